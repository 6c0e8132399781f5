"""imagegen's admin: the editor workflow (generate, watch, review, reuse),
runs, the image grid, the cost report, the callback audit log, outbound
webhook endpoints with their delivery log, and the mixins that put
generation into any model's admin (a field's Generate dialog, bulk fill)."""

from .bulk_fill import BulkFillAdminMixin
from .deliveries import WebhookDeliveryAdmin
from .image_fields import ImageFieldsAdminMixin
from .images import GeneratedImageAdmin
from .jobs import GenerationJobAdmin
from .runs import GenerationRunAdmin
from .tokens import ApiTokenAdmin
from .webhooks import OutboundDeliveryAdmin, WebhookEndpointAdmin

__all__ = [
    "ApiTokenAdmin",
    "BulkFillAdminMixin",
    "GeneratedImageAdmin",
    "GenerationJobAdmin",
    "GenerationRunAdmin",
    "ImageFieldsAdminMixin",
    "OutboundDeliveryAdmin",
    "WebhookDeliveryAdmin",
    "WebhookEndpointAdmin",
]
