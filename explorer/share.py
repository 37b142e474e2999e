"""Sharing a page: its QR code as inline SVG, drawn on the server from the ``qrcode`` package's
module matrix (no image request, nothing fetched from elsewhere)."""

from __future__ import annotations

import qrcode
import qrcode.constants
from markupsafe import Markup, escape

#: Quiet zone around the code, in modules (ISO/IEC 18004 asks for 4).
BORDER = 4


def qr_svg(url: str, *, label: str) -> Markup:
    """``url`` as a QR code (error correction M): an ``<svg>`` element, one path of dark modules,
    scaled by CSS, named ``label`` for screen readers."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=BORDER)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()  # the quiet zone included
    size = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return Markup(
        f'<svg class="qr" viewBox="0 0 {size} {size}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{"".join(runs)}"/></svg>'
    )
