"""What the platform watches: alert and recording rules, dashboards, and the metric names they rely on."""
