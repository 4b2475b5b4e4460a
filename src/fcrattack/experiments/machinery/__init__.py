"""What every experiment is built from: the config types and the records' form (``spec``),
the resumable driver (``driver``) and its staged, paired kind (``paired``), the regions of
restricted runs, model pre-flight checks, and the records' readers and shared table helpers
(``results``, ``paired_stats``, ``paired_views``)."""
