"""Figures for the book. The only part of ``diffnotes`` that imports matplotlib.

``common`` holds the shared style and image grids, ``frames`` the slider over precomputed frames that plays in the
browser with no kernel; each chapter has its own plotting module beside them.
"""

from diffnotes.plotting.common import BOOK_STYLE, image_grid, new_figure, show_image, show_images
from diffnotes.plotting.frames import frame_slider

__all__ = ["BOOK_STYLE", "frame_slider", "image_grid", "new_figure", "show_image", "show_images"]
