"""Running maskwatch on a distributed engine (Ray), for more than one machine: ``maskwatch detect --engine ray``."""
