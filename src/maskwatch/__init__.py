"""maskwatch: tell, for every face, whether it wears a mask, wears it wrongly, or wears none."""

__version__ = "0.1.0"
