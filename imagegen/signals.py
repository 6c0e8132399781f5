"""Signals: imagegen's in-process extension API.

Every signal is sent after the transaction that made the change commits,
with ``sender=GenerationJob`` and ``job=<GenerationJob>``. ``job_succeeded``
also sends ``assets`` (the list the asset adapter returned); ``job_failed``,
``job_expired`` and ``job_canceled`` carry the job's ``error_code`` and
``error_message`` on the job itself.

Outbound webhooks are not receivers of these signals: their deliveries are
recorded inside the change's transaction (:mod:`imagegen.webhooks.events`).
"""

from django.dispatch import Signal

job_submitted = Signal()
job_succeeded = Signal()
job_failed = Signal()
job_expired = Signal()
job_canceled = Signal()
