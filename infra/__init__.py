"""ai-platform: the Pulumi program, its components and the `aip` command line."""
