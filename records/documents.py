"""The documents a decision prints at the booth: 受理通知书, 不予受理通知书, 补正材料一次性告知书.

One A4 page each, in Chinese, with the case number, the item, the decision
date and deadline, the booth and the clerk, and a QR code to the public
progress page (`<public_base_url>/progress?case=...&code=...`).  The
progress code is printed too: a resident without a phone types it.

Chinese text uses reportlab's built-in CID font STSong-Light (Adobe-GB1),
which needs no font file on the server; Latin text (case number, URL,
code) is set in Helvetica so it stays searchable.  `invariant=True` gives
byte-identical output for identical input (tests, reproducible archives).
"""

from __future__ import annotations

import io
import logging
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from records.models import CaseStatus

logger = logging.getLogger(__name__)

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
LATIN_BOLD = "Helvetica-Bold"

# document code (PrintJob.document) and title per decision
DOCUMENT_OF: dict[CaseStatus, str] = {
    CaseStatus.ACCEPTED: "receipt",
    CaseStatus.REFUSED: "refusal",
    CaseStatus.NEEDS_SUPPLEMENT: "notice",
}
TITLES: dict[str, str] = {
    "receipt": "受理通知书",
    "refusal": "不予受理通知书",
    "notice": "补正材料一次性告知书",
}
STATUS_ZH: dict[CaseStatus, str] = {
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.REFUSED: "不予受理",
    CaseStatus.NEEDS_SUPPLEMENT: "待补正",
    CaseStatus.COMPLETED: "已办结",
}


def progress_url(public_base_url: str, case_number: str, progress_code: str) -> str:
    """The public progress page of a case, as the QR code carries it."""
    query = urllib.parse.urlencode({"case": case_number, "code": progress_code})
    return f"{public_base_url.rstrip('/')}/progress?{query}"


@dataclass(frozen=True)
class DecisionDocument:
    """Everything one decision document shows; no personal data of the resident."""

    status: CaseStatus
    case_number: str
    progress_code: str
    progress_url: str
    item_code: str
    item_name_zh: str
    decided_on: date
    booth_name: str
    region_name_zh: str
    clerk_name: str
    deadline: date | None = None
    time_limit_days: int | None = None
    reason: str = ""
    # (code, name_zh) of every missing material, for 补正
    missing_materials: Sequence[tuple[str, str]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        status = CaseStatus(self.status)
        if status not in DOCUMENT_OF:
            raise ValueError(f"no decision document for status {status.value}")
        if status is CaseStatus.REFUSED and not self.reason.strip():
            raise ValueError("a refusal notice needs the reason")
        if status is CaseStatus.NEEDS_SUPPLEMENT and not self.missing_materials:
            raise ValueError("a one-time notice must list the missing materials")
        if not self.case_number or not self.progress_url.startswith(("http://", "https://")):
            raise ValueError("case number and an absolute progress URL are required")

    @property
    def document(self) -> str:
        """The PrintJob document code: receipt, refusal or notice."""
        return DOCUMENT_OF[CaseStatus(self.status)]

    @property
    def title(self) -> str:
        return TITLES[self.document]


def _ensure_fonts() -> None:
    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def _qr_image(url: str) -> ImageReader:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    qr.add_data(url)
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    return ImageReader(img)


def _date_zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _wrap(text: str, width_pt: float, size: float) -> list[str]:
    """Greedy line breaks for mixed CJK/Latin text (CJK may break between any two characters)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for ch in paragraph:
            if pdfmetrics.stringWidth(line + ch, CJK_FONT, size) > width_pt and line:
                lines.append(line)
                line = ch
            else:
                line += ch
        lines.append(line)
    return lines


def _body_paragraphs(doc: DecisionDocument) -> list[str]:
    status = CaseStatus(doc.status)
    if status is CaseStatus.ACCEPTED:
        limit = f"{doc.time_limit_days}个工作日" if doc.time_limit_days else "即办"
        deadline = _date_zh(doc.deadline) if doc.deadline else "当日"
        return [
            f"您申请办理的「{doc.item_name_zh}」事项，经审查，申请材料齐全、符合法定形式，现予受理。",
            f"法定办理时限为{limit}，承诺于{deadline}前办结。",
            "您可扫描右侧二维码，或登录进度查询页面输入案件编号和查询码，随时查询办理进度。",
        ]
    if status is CaseStatus.REFUSED:
        return [
            f"您申请办理的「{doc.item_name_zh}」事项，经审查，决定不予受理。",
            f"理由：{doc.reason.strip()}",
            "如对本决定不服，可依法申请行政复议或者提起行政诉讼。",
        ]
    return [
        f"您申请办理的「{doc.item_name_zh}」事项，申请材料不齐全或者不符合法定形式。"
        "根据相关规定，现一次性告知您需要补正的全部材料如下：",
        *[f"{i}. {name}" for i, (_code, name) in enumerate(doc.missing_materials, start=1)],
        *([f"说明：{doc.reason.strip()}"] if doc.reason.strip() else []),
        "请备齐上述材料后，到任一政务晓屋或服务窗口补正，凭本告知书可继续办理。",
    ]


def render_decision_pdf(doc: DecisionDocument, *, invariant: bool = False) -> bytes:
    """The document as a one-page A4 PDF."""
    _ensure_fonts()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=int(invariant), pageCompression=1)
    # ASCII metadata: archives and tests find a document by its case number without parsing pages.
    pdf.setTitle(f"{doc.document} {doc.case_number}")
    pdf.setSubject(doc.case_number)
    pdf.setAuthor("cloudseat")
    pdf.setCreator("cloudseat records.documents")
    width, height = A4
    left, right = 22 * mm, width - 22 * mm

    pdf.setFont(CJK_FONT, 22)
    pdf.drawCentredString(width / 2, height - 32 * mm, doc.title)
    pdf.setLineWidth(0.8)
    pdf.line(left, height - 37 * mm, right, height - 37 * mm)

    # Facts, label in Chinese, value in the font that fits it.
    y = height - 48 * mm
    facts: list[tuple[str, str, bool]] = [
        ("案件编号", doc.case_number, True),
        ("办理事项", f"{doc.item_name_zh}", False),
        ("事项编码", doc.item_code, True),
        ("办理状态", STATUS_ZH[CaseStatus(doc.status)], False),
        ("决定日期", _date_zh(doc.decided_on), False),
    ]
    if CaseStatus(doc.status) is CaseStatus.ACCEPTED:
        facts.append(("办结期限", _date_zh(doc.deadline) if doc.deadline else "即办", False))
    facts += [
        ("办理地点", f"{doc.region_name_zh} · {doc.booth_name}（远程视频办理）", False),
        ("经办人员", doc.clerk_name, False),
        ("查询码", doc.progress_code, True),
    ]
    for label, value, latin in facts:
        pdf.setFont(CJK_FONT, 12)
        pdf.drawString(left, y, f"{label}：")
        pdf.setFont(LATIN_BOLD if latin else CJK_FONT, 12)
        pdf.drawString(left + 26 * mm, y, value)
        y -= 8 * mm

    qr_size = 38 * mm
    qr_top = height - 46 * mm
    pdf.drawImage(_qr_image(doc.progress_url), right - qr_size, qr_top - qr_size, qr_size, qr_size)
    pdf.setFont(CJK_FONT, 9)
    pdf.drawCentredString(right - qr_size / 2, qr_top - qr_size - 4 * mm, "扫码查询办理进度")

    y -= 4 * mm
    pdf.line(left, y, right, y)
    y -= 10 * mm
    for paragraph in _body_paragraphs(doc):
        for line in _wrap(paragraph, right - left, 12):
            pdf.setFont(CJK_FONT, 12)
            pdf.drawString(left, y, line)
            y -= 7 * mm
        y -= 2 * mm

    pdf.setFont(CJK_FONT, 9)
    pdf.drawString(left, 24 * mm, "进度查询：")
    pdf.setFont(LATIN_FONT, 8)
    pdf.drawString(left + 16 * mm, 24 * mm, doc.progress_url)
    pdf.setFont(CJK_FONT, 9)
    pdf.drawString(left, 18 * mm, "本文书由云坐席远程视频办理系统生成，请妥善保管。")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
