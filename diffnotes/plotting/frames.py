"""Animations that need no kernel: a slider and a play button over precomputed frames, in one piece of HTML.

Where motion tells the story (chapter 2's forward process eating a digit, chapter 8's reverse trajectory, the
guidance scale, img2img's strength), :func:`frame_slider` turns a few frames into small PNG images inlined as
base64 data URIs, with a few lines of plain JavaScript to step through them. The result is an IPython display
object: a notebook cell that ends with it shows the slider, and the book's HTML page plays it offline, with no
kernel, no library and nothing downloaded. Without JavaScript, and on paper (the PDF is the page printed by
Chromium), the page shows the start frame with its label, and the controls are hidden from print.
"""

from __future__ import annotations

import base64
import html
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from diffnotes.data import to_unit_range
from diffnotes.plotting.common import image_grid


@dataclass(frozen=True, repr=False)
class FrameSlider:
    """Frames as PNG files, each with its label; a notebook shows it as a slider (see :func:`frame_slider`).

    Attributes:
        pngs: one PNG file (bytes) per frame, all of the same size in pixels.
        labels: one label per frame, e.g. "t = 250".
        title: a line shown above the frames, or None.
        width: the frames' display width in CSS pixels.
        height: the frames' display height in CSS pixels.
        start: the index of the frame shown first (and printed).
        fps: frames per second while playing.
    """

    pngs: tuple[bytes, ...]
    labels: tuple[str, ...]
    title: str | None
    width: int
    height: int
    start: int
    fps: float

    def __repr__(self) -> str:
        return f"FrameSlider({len(self.pngs)} frames, {self.labels[0]!r} ... {self.labels[-1]!r})"

    def _repr_html_(self) -> str:
        """The slider as HTML, with element ids that no other slider on the page shares."""
        return _html(self, f"dn-frames-{uuid.uuid4().hex[:12]}")


def frame_slider(
    frames: Sequence[torch.Tensor | np.ndarray | Figure] | torch.Tensor,
    labels: Sequence[str],
    title: str | None = None,
    scale: int | None = None,
    start: int = 0,
    fps: float = 5.0,
    nrow: int = 8,
) -> FrameSlider:
    """A slider with a play button over ``frames``, for a notebook cell to display (HTML, no kernel needed).

    Each frame is drawn once, here, into a PNG image; the page only switches between them, so it plays offline
    in any browser. Keep frames small (a few dozen frames of digits or of small grids), since every frame is
    part of the page: 20 digits of 28 x 28 pixels take about 30 KB.

    Args:
        frames: the frames, in order. Each is an image tensor (or array) in [-1, 1] of shape (H, W) or (C, H, W)
            with C = 1 or 3, a batch (B, C, H, W) shown as a grid of ``nrow`` images per row, or a matplotlib
            figure (drawn to PNG at its size and closed). A tensor (K, C, H, W) is K frames. Values outside
            [-1, 1] are clipped. Every frame must come out at the same size in pixels.
        labels: one label per frame, shown beside the slider, e.g. ``[f"t = {t}" for t in ts]``.
        title: a line above the frames (plain text), or None.
        scale: screen pixels per image pixel (nearest neighbour, so pixels stay sharp); None picks 3 for
            image frames and 1 for figures, which are already at their size.
        start: the index of the frame shown when the page opens, which is also what a printed page shows
            (e.g. -1 for the last frame).
        fps: frames per second while playing; playing stops at the last frame, and from there starts again.
        nrow: images per row of a grid, for frames that are batches.

    Returns:
        A :class:`FrameSlider`; its ``_repr_html_`` is the slider.

    Raises:
        ValueError: naming the argument: no frames, a frame of another shape or size, labels of another length,
            or a bad ``scale``, ``start``, ``fps`` or ``nrow``.
    """
    if isinstance(frames, (torch.Tensor, np.ndarray)) and frames.ndim < 3:
        raise ValueError(f"frames must be a sequence of images, e.g. a tensor (K, C, H, W); got shape {frames.shape}")
    frames = list(frames)
    if not frames:
        raise ValueError("frames must hold at least one frame, got none")
    if isinstance(labels, str) or len(labels) != len(frames):
        got = "one string" if isinstance(labels, str) else f"{len(labels)} labels"
        raise ValueError(f"labels must hold one label per frame: got {got} for {len(frames)} frames")
    for name, value in (("scale", scale), ("nrow", nrow)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(start, bool) or not isinstance(start, int) or not -len(frames) <= start < len(frames):
        raise ValueError(f"start must index one of the {len(frames)} frames, got {start!r}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 60:
        raise ValueError(f"fps must be a number of frames per second in (0, 60], got {fps!r}")
    pngs, sizes = [], []
    for index, frame in enumerate(frames):
        png, size = _png(frame, index, nrow)
        if sizes and size != sizes[0]:
            raise ValueError(
                f"frames must all have the same size: frames[0] is {_wxh(sizes[0])} pixels, "
                f"frames[{index}] is {_wxh(size)}"
            )
        pngs.append(png)
        sizes.append(size)
    if scale is None:
        scale = 1 if any(isinstance(frame, Figure) for frame in frames) else 3
    width, height = sizes[0]
    title = None if title is None else str(title)
    return FrameSlider(tuple(pngs), tuple(str(label) for label in labels), title, width * scale, height * scale,
                       start % len(frames), float(fps))


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]} x {size[1]}"


def _png(frame: torch.Tensor | np.ndarray | Figure, index: int, nrow: int) -> tuple[bytes, tuple[int, int]]:
    """One frame as a PNG file and its (width, height) in pixels."""
    buffer = io.BytesIO()
    if isinstance(frame, Figure):
        frame.savefig(buffer, format="png", dpi=frame.dpi)  # its own size, whatever savefig.dpi says
        plt.close(frame)
        return buffer.getvalue(), Image.open(io.BytesIO(buffer.getvalue())).size
    image = Image.fromarray(_pixels(frame, index, nrow))
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue(), image.size


def _pixels(frame: torch.Tensor | np.ndarray, index: int, nrow: int) -> np.ndarray:
    """A frame in [-1, 1] as uint8 pixels (H, W) for one channel or (H, W, 3) for three."""
    try:
        x = torch.as_tensor(frame).detach().float().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"frames[{index}] must be an image tensor or a matplotlib figure, got {type(frame)}") from None
    x = x[None] if x.dim() == 2 else x
    if x.dim() == 3 and x.shape[0] in (1, 3) and x.shape[1] > 0 and x.shape[2] > 0:
        unit = to_unit_range(x).permute(1, 2, 0)  # (H, W, C)
    elif x.dim() == 4 and len(x) > 0 and x.shape[1] in (1, 3) and x.shape[2] > 0 and x.shape[3] > 0:
        unit = image_grid(x, nrow=min(nrow, len(x)))  # (H', W', C)
    else:
        raise ValueError(
            f"frames[{index}] must have shape (H, W), (C, H, W) or (B, C, H, W) with C = 1 or 3, "
            f"got {tuple(torch.as_tensor(frame).shape)}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"frames[{index}] holds NaN or infinite values")
    pixels = (unit * 255).round().to(torch.uint8).numpy()
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


_STYLE = """<style>
.dn-frames {margin: 0.5em 0; text-align: center;}
.dn-frames-title {font-size: 0.9em; margin-bottom: 0.3em;}
.dn-frames img {image-rendering: pixelated; max-width: 100%; height: auto;}
.dn-frames img[hidden] {display: none;}
.dn-frames-controls {display: flex; align-items: center; justify-content: center; gap: 0.6em;
  font-size: 0.9em;}
.dn-frames-controls input {flex: 1 1 auto; max-width: 28em;}
.dn-frames-controls button {min-width: 4.5em;}
@media print {.dn-frames-controls button, .dn-frames-controls input {display: none;}}
</style>"""

# Plain JavaScript, run once where the slider is inserted; ids and numbers are filled in by _html.
_SCRIPT = """<script>
(function () {
  var frames = document.getElementById("%(id)s").querySelectorAll("img.dn-frame");
  var range = document.getElementById("%(id)s-range");
  var button = document.getElementById("%(id)s-play");
  var label = document.getElementById("%(id)s-label");
  var current = %(start)d, timer = null;
  function show(i) {
    frames[current].hidden = true;
    frames[i].hidden = false;
    current = i;
    range.value = String(i);
    label.textContent = frames[i].getAttribute("data-label");
  }
  function stop() {
    clearInterval(timer);
    timer = null;
    button.textContent = "Play";
  }
  function play() {
    if (current === frames.length - 1) { show(0); }
    button.textContent = "Pause";
    timer = setInterval(function () {
      if (current === frames.length - 1) { stop(); } else { show(current + 1); }
    }, %(interval)d);
  }
  range.addEventListener("input", function () { stop(); show(Number(range.value)); });
  button.addEventListener("click", function () { if (timer === null) { play(); } else { stop(); } });
  range.disabled = false;
  button.disabled = false;
})();
</script>"""


def _html(slider: FrameSlider, root: str) -> str:
    """The slider's HTML with ``root`` as the id of its outer element (the controls' ids start with it)."""
    esc = html.escape
    n = len(slider.pngs)
    lines = [f'<div class="dn-frames" id="{root}">', _STYLE]
    if slider.title:
        lines.append(f'<div class="dn-frames-title">{esc(slider.title)}</div>')
    for index, (png, label) in enumerate(zip(slider.pngs, slider.labels)):
        data = base64.b64encode(png).decode("ascii")
        alt = f"{slider.title}: {label}" if slider.title else label
        hidden = "" if index == slider.start else " hidden"
        lines.append(
            f'<img class="dn-frame" src="data:image/png;base64,{data}" width="{slider.width}" '
            f'height="{slider.height}" alt="{esc(alt)}" data-label="{esc(label)}"{hidden}>'
        )
    # The controls start disabled: without JavaScript they could not work, and the page shows the start frame.
    lines.append(
        f'<div class="dn-frames-controls">'
        f'<button type="button" id="{root}-play" disabled>Play</button>'
        f'<input type="range" id="{root}-range" min="0" max="{n - 1}" step="1" value="{slider.start}" '
        f'aria-label="frame" disabled>'
        f'<span class="dn-frames-label" id="{root}-label">{esc(slider.labels[slider.start])}</span></div>'
    )
    lines.append(_SCRIPT % {"id": root, "start": slider.start, "interval": round(1000 / slider.fps)})
    lines.append("</div>")
    return "\n".join(lines)
