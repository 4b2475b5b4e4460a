"""Utilities every layer may use and that import nothing of fcrattack above them: input
validation, the JSON/JSONL store, statistics, per-image seeding, torch.distributed helpers and
warnings."""
