"""`aip preview`: run the real Pulumi program offline, under the Pulumi SDK's own mocks."""

from infra.preview.project import Project, ProjectError
from infra.preview.runner import PreviewResult, ProgramError, ResourceRecord, run_preview

__all__ = ["PreviewResult", "ProgramError", "Project", "ProjectError", "ResourceRecord", "run_preview"]
