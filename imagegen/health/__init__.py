"""Is the running system healthy?

:mod:`.doctor` runs ``manage.py imagegen doctor``: real round trips to the
broker, a worker, the callback URL, the storage and each provider.
:mod:`.notices` is the job list's cheap version (heartbeats and one job row,
no broker). :mod:`.probe` is the view the callback round trip ends at.
Submodules are imported where used, so mounting the probe URL loads no more
than the view.
"""
