"""Ground truth: calibrate and validate netns-sim against the real Linux kernel.

Modules, one concept each: `netns` (safe creation and cleanup of real setups), `pingpong`
(the measuring program), `measure` (the driver: interleaved, repeated, pinned runs),
`setups` (each setup: how to build it in the kernel and how to simulate it), `predict` (the
model's round trip for a setup), `fit` (least squares of grouped stage costs), `profile_io`
(writing the calibrated profile and its measurements), `validate` (measured vs predicted),
`__main__` (``calibrate`` and ``validate-real`` entry points).  See docs/calibration.md.
"""
