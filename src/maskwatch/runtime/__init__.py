"""Inference: loading trained models and running them on images."""
