"""The pure core: standard library only, no I/O, no sleeping, time through a Clock."""
