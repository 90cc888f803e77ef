"""Prefect flows (thin wrappers over :mod:`privacy`) and the ``privpipe`` command line.

Importing this package imports neither Prefect nor the heavy libraries: commands load
what they need when they run.
"""
