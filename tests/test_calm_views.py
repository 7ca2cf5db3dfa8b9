"""A calm window, the views (issue 28): "What β does" scrolls at one level only, the map's hover text never
overlaps its legend, and the rate–distortion plane frames all its runs as they are added unless the person
zoomed."""

import pytest
from PySide6.QtWidgets import QScrollArea

pytestmark = pytest.mark.usefixtures("no_thread_leaks")


def test_what_beta_does_has_one_level_of_scrolling(window, qtbot):
    view = window.tradeoff.lesson
    window.show_tradeoff(window.tradeoff.TAB_LESSON)
    qtbot.waitUntil(view.isVisible)
    areas = view.findChildren(QScrollArea)
    assert len(areas) == 1, [a.objectName() or type(a.parentWidget()).__name__ for a in areas]
    page = areas[0]
    assert page.widget() is not None and not page.widget().findChildren(QScrollArea)
    # the reconstructions and the comparison's views are sized by their images, inside the page
    from PySide6.QtGui import QImage
    image = QImage(900, 700, QImage.Format_RGB32)
    image.fill(0)
    view.recon_view.set_image(image)
    qtbot.waitUntil(lambda: view.recon_view.label.height() >= 0.95 * 700)   # grown to the image, in the page
    assert not view.findChildren(QScrollArea)[0].widget().findChildren(QScrollArea)
