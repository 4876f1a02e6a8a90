"""The engine: enrollment, the pure executor, scheduling, delivery, Dramatiq actors."""
