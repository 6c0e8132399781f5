"""Outbound webhooks: job events delivered to subscribed endpoints, signed
with the Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``), retried on a schedule and logged.

- :mod:`.signing`: the per-endpoint secret (derived, never stored) and the
  signature.
- :mod:`.events`: event names, payloads, and the signal receivers that turn
  job events into :class:`~imagegen.models.OutboundDelivery` rows.
- :mod:`.delivery`: one attempt (claim, POST through the SSRF-safe client,
  record, schedule the retry) and the sweeper's re-sends.

See docs/webhooks.md.
"""
