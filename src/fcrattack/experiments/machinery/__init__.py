"""What every experiment is built from: the config types (``spec``), the resumable runner and
its staged, paired kind, the regions of restricted runs, model pre-flight checks, and the
records' readers and shared table helpers (``results``, ``paired_stats``, ``paired_views``)."""
