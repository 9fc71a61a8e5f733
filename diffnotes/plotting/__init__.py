"""Figures for the book. The only part of ``diffnotes`` that imports matplotlib.

``common`` holds the shared style and image grids; each chapter has its own plotting module beside it.
"""

from diffnotes.plotting.common import BOOK_STYLE, image_grid, new_figure, show_image, show_images

__all__ = ["BOOK_STYLE", "image_grid", "new_figure", "show_image", "show_images"]
