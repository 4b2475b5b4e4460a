"""The experiments, one module each: its config at any scale and its report section."""
