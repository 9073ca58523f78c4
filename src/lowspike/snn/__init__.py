"""Spiking layers: neurons, DNN-to-SNN conversion, simulation."""
