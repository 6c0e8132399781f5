"""imagegen's admin: the editor workflow (generate, watch, review, reuse),
the image grid, the cost report, the callback audit log, and outbound
webhook endpoints with their delivery log."""

from .deliveries import WebhookDeliveryAdmin
from .image_fields import ImageFieldsAdminMixin
from .images import GeneratedImageAdmin
from .jobs import GenerationJobAdmin
from .runs import GenerationRunAdmin
from .tokens import ApiTokenAdmin
from .webhooks import OutboundDeliveryAdmin, WebhookEndpointAdmin

__all__ = [
    "ApiTokenAdmin",
    "GeneratedImageAdmin",
    "GenerationJobAdmin",
    "GenerationRunAdmin",
    "ImageFieldsAdminMixin",
    "OutboundDeliveryAdmin",
    "WebhookDeliveryAdmin",
    "WebhookEndpointAdmin",
]
