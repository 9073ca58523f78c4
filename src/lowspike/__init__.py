"""lowspike: reduce the activity of spiking neural networks, reproducibly."""

__version__ = "0.1.0"
