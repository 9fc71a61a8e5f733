"""The frame slider: self-contained HTML (one inline PNG per frame, controls, a script), unique ids, clear errors."""

import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from diffnotes.plotting.frames import FrameSlider, frame_slider


def digits(k: int = 5) -> torch.Tensor:
    """K frames (K, 1, 28, 28) in [-1, 1]: a bar that moves down."""
    x = -torch.ones(k, 1, 28, 28)
    for i in range(k):
        x[i, 0, 4 * i : 4 * i + 3, 5:20] = 1.0
    return x


def images(page: str) -> list[str]:
    return re.findall(r"<img [^>]*>", page)


def test_one_inline_png_per_frame_with_its_label():
    labels = [f"t = {t}" for t in range(0, 500, 100)]
    page = frame_slider(digits(), labels, title="a bar falls")._repr_html_()
    tags = images(page)
    assert len(tags) == 5
    for tag, label in zip(tags, labels):
        assert f'data-label="{label}"' in tag and 'src="data:image/png;base64,' in tag
    assert len(re.findall(r"<img [^>]*hidden", page)) == 4  # only the start frame shows without the script
    assert page.count('type="range"') == 1 and 'max="4"' in page and "<button" in page and "<script>" in page
    assert "a bar falls" in page and "http" not in page  # nothing to download


def test_the_pngs_hold_the_frames_pixels_upscaled_by_the_display_only():
    slider = frame_slider(digits(2), ["a", "b"], scale=3)
    png = Image.open(io.BytesIO(slider.pngs[1]))
    assert png.size == (28, 28) and (slider.width, slider.height) == (84, 84)
    pixels = np.asarray(png)
    assert pixels[4:7, 5:20].min() == 255 and pixels[0:4].max() == 0  # the bar of frame 1, black elsewhere
    src = re.findall(r'src="data:image/png;base64,([^"]+)"', slider._repr_html_())[1]
    assert base64.b64decode(src) == slider.pngs[1]


def test_batches_become_grids_and_figures_become_pngs():
    grid = frame_slider(torch.zeros(3, 8, 1, 28, 28), ["a", "b", "c"], nrow=4)
    assert Image.open(io.BytesIO(grid.pngs[0])).size == (4 * 29 + 1, 2 * 29 + 1)
    figures = []
    for k in range(2):
        fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
        ax.plot([0, 1], [0, k])
        figures.append(fig)
    slider = frame_slider(figures, ["k = 0", "k = 1"])
    assert Image.open(io.BytesIO(slider.pngs[0])).size == (100, 75) and slider.width == 100  # scale 1 for figures
    assert not plt.fignum_exists(figures[0].number)  # drawn once, then closed


def test_ids_are_unique_across_sliders_and_the_script_uses_its_own():
    a = frame_slider(digits(), list("abcde"))._repr_html_()
    b = frame_slider(digits(), list("abcde"))._repr_html_()
    ids_a, ids_b = set(re.findall(r'id="([^"]+)"', a)), set(re.findall(r'id="([^"]+)"', b))
    assert len(ids_a) == 4 and not ids_a & ids_b
    root = re.search(r'<div class="dn-frames" id="([^"]+)"', a).group(1)
    assert set(re.findall(r'getElementById\("([^"]+)"\)', a)) == ids_a and all(i.startswith(root) for i in ids_a)


def test_start_frame_is_the_one_shown_and_printed():
    slider = frame_slider(digits(), list("abcde"), start=-1)
    page = slider._repr_html_()
    assert slider.start == 4 and 'value="4"' in page and ">e</span>" in page
    assert "hidden" not in images(page)[4] and "@media print" in page


def test_labels_and_titles_are_escaped():
    page = frame_slider(digits(1), ['<b>"x"</b>'], title="a < b")._repr_html_()
    assert "<b>" not in page and "&lt;b&gt;&quot;x&quot;&lt;/b&gt;" in page and "a &lt; b" in page


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": []}, "frames must hold at least one frame"),
        ({"frames": torch.zeros(28, 28)}, "frames must be a sequence of images"),
        ({"labels": ["a", "b"]}, "labels must hold one label per frame: got 2 labels for 5 frames"),
        ({"labels": "abcde"}, "labels must hold one label per frame: got one string"),
        ({"frames": [torch.zeros(2, 28, 28)]}, r"frames\[0\] must have shape"),
        ({"frames": [torch.zeros(28, 28), torch.zeros(5)]}, r"frames\[1\] must have shape"),
        ({"frames": [torch.zeros(28, 28), torch.zeros(14, 14)]}, r"frames\[0\] is 28 x 28 pixels, frames\[1\] is 14"),
        ({"frames": [torch.full((28, 28), float("nan"))]}, r"frames\[0\] holds NaN"),
        ({"frames": ["not an image"]}, r"frames\[0\] must be an image tensor"),
        ({"scale": 0}, "scale must be a positive integer"),
        ({"nrow": 1.5}, "nrow must be a positive integer"),
        ({"start": 5}, "start must index one of the 5 frames"),
        ({"fps": 0}, "fps must be a number"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    args = {"frames": digits(), "labels": list("abcde")} | kwargs
    if "labels" not in kwargs and not isinstance(args["frames"], torch.Tensor):
        args["labels"] = [str(i) for i in range(len(args["frames"]))]
    with pytest.raises(ValueError, match=message):
        frame_slider(**args)


def test_repr_is_short():
    slider = frame_slider(digits(), list("abcde"))
    assert isinstance(slider, FrameSlider) and repr(slider) == "FrameSlider(5 frames, 'a' ... 'e')"
