"""imagegen's admin: the editor workflow (generate, watch, review, reuse),
the image grid, the cost report and the callback audit log."""

from .deliveries import WebhookDeliveryAdmin
from .images import GeneratedImageAdmin
from .jobs import GenerationJobAdmin

__all__ = ["GeneratedImageAdmin", "GenerationJobAdmin", "WebhookDeliveryAdmin"]
