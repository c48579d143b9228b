"""Benchmarks of gpugo's hot paths against a raw baseline and a peer (never imported by gpugo)."""
