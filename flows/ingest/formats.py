"""What a file is, from its bytes rather than its name, and the readers for the spreadsheets calamine cannot open.

Government systems' 导出Excel often writes an HTML table, or an Excel "XML Spreadsheet 2003" document, under a
``.xls`` name; WPS saves ``.et`` (BIFF inside OLE2), LibreOffice ``.ods``. ``sniff`` looks at the first bytes (and,
for OLE2 and zip containers, at the names inside) and says which reader applies, or what the file really is (a PDF,
a Word document, an image, an encrypted workbook) in words a person understands, never a parser's hex dump.

``html_sheets`` and ``spreadsheetml_sheets`` give the same shape as calamine: rows of cells (str, float, datetime,
bool), a merged area's value in its top-left cell and '' in the cells it covers, blank rows kept so that row numbers
are those a person sees in Excel. Text is decoded with ``MARK``: a byte sequence that is not valid in the file's
encoding becomes ``BAD`` followed by the bytes escaped (``\\xff``), so that the reader can reject that row alone.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SNIFF_BYTES = 1 << 16
BAD = "\ufdd0"  # a Unicode noncharacter: never in real text, marks where undecodable bytes were
MARK = "recon-mark"  # codec error handler: BAD + the bytes as \xNN
MAX_SPAN = 1000  # a colspan/rowspan larger than this is taken as this (a malformed page cannot blow up memory)

_SS = "urn:schemas-microsoft-com:office:spreadsheet"
_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")
_WHITESPACE = re.compile(r"[\s\u00a0]+")
GBK_NAMES = {"gbk", "gb2312", "gb_2312", "gb-2312", "x-gbk", "cp936", "936", "ms936", "windows-936", "euc-cn"}


class UnreadableFile(Exception):
    """The file is not a readable export (other type, corrupt, encrypted, empty, unknown encoding)."""


def _mark(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start : err.end]
    return BAD + "".join(f"\\x{b:02x}" for b in bad), err.end


codecs.register_error(MARK, _mark)


@dataclass(frozen=True)
class Format:
    """``reader``: 'calamine', 'html', 'spreadsheetml' or 'text' for what can be read; 'encrypted' or 'other' for
    what cannot. ``what`` says it in words; ``suffix`` is the one calamine needs to recognise a workbook."""

    reader: str
    what: str
    suffix: str | None = None

    @property
    def readable(self) -> bool:
        return self.reader in ("calamine", "html", "spreadsheetml", "text")


ENCRYPTED = "password-protected workbook (文件已加密：请在 Excel/WPS 中去掉打开密码后重新导出)"

_MAGIC = [
    (b"%PDF", "a PDF document (PDF 文档)"),
    (b"\xff\xd8\xff", "a JPEG image (图片)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image (图片)"),
    (b"GIF87a", "a GIF image (图片)"),
    (b"GIF89a", "a GIF image (图片)"),
    (b"II*\x00", "a TIFF image (图片)"),
    (b"MM\x00*", "a TIFF image (图片)"),
    (b"Rar!\x1a\x07", "a RAR archive (压缩包)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive (压缩包)"),
    (b"\x1f\x8b", "a gzip archive (压缩包)"),
    (b"{\\rtf", "an RTF document (RTF 文档)"),
    (b"%!PS", "a PostScript document"),
]


def sniff(path: Path) -> Format:
    """What the file is, from its bytes. Never raises for content (an unreadable path raises OSError)."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(OLE_MAGIC):
        return _sniff_ole(path)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _sniff_zip(path)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return Format("other", what)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Format("other", "a WebP image (图片)")
    return _sniff_markup(head) or Format("text", "text")


def _sniff_ole(path: Path) -> Format:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            names = {"/".join(entry).lower() for entry in ole.listdir(streams=True, storages=True)}
    except Exception as e:  # olefile raises OSError and its own errors for a broken container
        return Format("other", f"a damaged Office 97-2003 (OLE2) file ({_plain(e)})")
    if "encryptioninfo" in names or "encryptedpackage" in names:
        return Format("encrypted", ENCRYPTED)  # an encrypted xlsx/docx is an OLE2 file holding the package
    if "workbook" in names or "book" in names:
        return Format("calamine", "an Excel 97-2003 workbook (BIFF .xls / WPS .et)", ".xls")
    if "worddocument" in names:
        return Format("other", "a Word 97-2003 document (.doc, Word 文档)")
    if "powerpoint document" in names:
        return Format("other", "a PowerPoint 97-2003 presentation (.ppt)")
    if any(n.startswith("__substg1.0_") for n in names):
        return Format("other", "an Outlook message (.msg, 邮件)")
    # no stream name we know (some WPS versions): let the BIFF reader try
    return Format("calamine", "an Office 97-2003 (OLE2) file", ".xls")


def _sniff_zip(path: Path) -> Format:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            mimetype = z.read("mimetype").strip() if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as e:
        return Format("other", f"a damaged or truncated zip file (an .xlsx is a zip: {_plain(e)})")
    if not names:
        return Format("other", "an empty zip archive (空压缩包)")
    if mimetype:
        if b"opendocument.spreadsheet" in mimetype:
            return Format("calamine", "an OpenDocument spreadsheet (.ods)", ".ods")
        if b"opendocument.text" in mimetype:
            return Format("other", "an OpenDocument text document (.odt)")
        return Format("other", f"an OpenDocument file ({mimetype.decode('ascii', 'replace')})")
    if "xl/workbook.xml" in names:
        return Format("calamine", "an Excel workbook (.xlsx)", ".xlsx")
    if "xl/workbook.bin" in names:
        return Format("calamine", "an Excel binary workbook (.xlsb)", ".xlsb")
    if any(n.startswith("word/") for n in names):
        return Format("other", "a Word document (.docx, Word 文档)")
    if any(n.startswith("ppt/") for n in names):
        return Format("other", "a PowerPoint presentation (.pptx)")
    if any(n.lower() == "ofd.xml" for n in names):
        return Format("other", "an OFD document (版式文件，如电子发票)")
    sample = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    return Format(
        "other", f"a zip archive of {len(names)} files ({sample}); unpack it and put the exports in raw/ (请先解压)"
    )


def _sniff_markup(head: bytes) -> Format | None:
    text = _ascii_view(head)
    start = text.lstrip()
    if not start.startswith("<"):
        return None
    low = start[:SNIFF_BYTES].lower()
    if low.startswith("<?xml") and _SS in low:
        return Format("spreadsheetml", "an Excel XML Spreadsheet 2003 document (.xml/.xls)")
    if "<table" in low or low.startswith(("<!doctype html", "<html")) or "<html" in low[:2000]:
        return Format("html", "an HTML table (网页格式的导出表)")
    return None


def _ascii_view(head: bytes) -> str:
    """The head as text good enough to find ASCII markup: UTF-16 (BOM) decoded, else bytes read as Latin-1."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head[: len(head) // 2 * 2].decode("utf-16", "replace")
    if head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    return head.decode("latin-1")


def _plain(e: BaseException) -> str:
    """An exception's message without byte dumps (\\x3c\\x68…), at most one line of 200 characters."""
    text = re.sub(r"(?:\\x[0-9a-fA-F]{2}){2,}", "…", str(e)).splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def plain_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {_plain(e)}"


# --- decoding markup ---------------------------------------------------------------------------------------------


def declared_encoding(head: bytes) -> str | None:
    """The charset a page or XML document declares (<meta charset>, <meta http-equiv>, <?xml encoding>), as a
    Python codec name; GBK and GB2312 read as GB18030, their superset."""
    m = _XML_ENCODING.search(head[:400].lstrip(codecs.BOM_UTF8)) or _CHARSET.search(head)
    if not m:
        return None
    name = m.group(1).decode("ascii").lower()
    if name in GBK_NAMES or name.startswith("gb18030"):
        return "gb18030"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_markup(data: bytes, encoding: str) -> str:
    """The document as text; bytes not valid in ``encoding`` are marked (BAD + escaped), never lost or fatal."""
    if encoding.startswith("utf-16") or data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", MARK)
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    return data.decode(encoding, MARK)


# --- HTML ----------------------------------------------------------------------------------------------------------


def html_sheets(text: str) -> list[tuple[str, list[list[object]]]]:
    """One sheet, as Excel shows an HTML page: its tables one under the other, a heading or paragraph outside the
    tables (a title such as 国库集中支付明细 or 单位：元) as a one-cell row."""
    import lxml.html

    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        doc = lxml.html.document_fromstring(text.encode("utf-8", "surrogatepass"), parser=parser)
    except Exception as e:  # lxml raises ParserError for an empty document
        raise UnreadableFile(f"not a readable HTML table ({plain_error(e)})") from e
    for junk in doc.xpath("//script|//style|//head|//title"):
        junk.drop_tree()
    rows: list[list[object]] = []

    def line(text: str | None) -> None:
        if text and (text := _WHITESPACE.sub(" ", text).strip()):
            rows.append([text])

    def walk(el) -> None:
        line(el.text)
        for child in el:
            if isinstance(child.tag, str):
                if child.tag == "table":
                    rows.extend(_table_rows(child))
                elif child.xpath(".//table"):
                    walk(child)  # a wrapper (<div>, <center>, <form>) around tables
                else:
                    line(_cell_text(child))  # a title: <h1>, <p>, <div>, <span>
            line(child.tail)

    body = doc.find("body")
    walk(body if body is not None else doc)
    if not rows:
        raise UnreadableFile("the HTML page holds no table (没有表格)")
    return [("html", rows)]


def _cell_text(el) -> str:
    for br in el.iter("br"):
        br.tail = "\n" + (br.tail or "")
    return _WHITESPACE.sub(" ", el.text_content()).strip()


def _span(el, name: str) -> int:
    try:
        n = int(str(el.get(name, "1")).strip() or 1)
    except ValueError:
        return 1
    return MAX_SPAN if n == 0 and name == "rowspan" else max(1, min(n, MAX_SPAN))


def _table_rows(table) -> list[list[object]]:
    """Rows of one table with colspan/rowspan laid out like Excel's merged cells: the text in the top-left cell,
    '' in every cell the span covers (the shape calamine gives for a merged area of an xlsx)."""
    trs = [tr for tr in table.iter("tr") if next((a for a in tr.iterancestors("table")), None) is table]
    caption = table.find("caption")
    out: list[list[object]] = []
    if caption is not None and (text := _cell_text(caption)):
        out.append([text])
    covered: dict[int, int] = {}  # column -> rows below still covered by a rowspan from above
    for tr in trs:
        row: list[object] = []

        def skip_covered(row=row) -> None:
            while covered.get(len(row), 0) > 0:
                covered[len(row)] -= 1
                row.append("")

        for td in tr:
            if not isinstance(td.tag, str) or td.tag not in ("td", "th"):
                continue
            skip_covered()
            start, across, down = len(row), _span(td, "colspan"), _span(td, "rowspan")
            row.append(_cell_text(td))
            row.extend([""] * (across - 1))
            if down > 1:
                for c in range(start, start + across):
                    covered[c] = down - 1
        for c in sorted(c for c, left in covered.items() if left > 0 and c >= len(row)):
            row.extend([""] * (c - len(row)))
            covered[c] -= 1
            row.append("")
        out.append(row)
    return out


# --- XML Spreadsheet 2003 ------------------------------------------------------------------------------------------


def spreadsheetml_sheets(text: str) -> list[tuple[str, list[list[object]]]]:
    """Each <Worksheet> as rows: ss:Index gaps kept as blank rows and cells, ss:MergeAcross / ss:MergeDown laid out
    like merged cells (value top-left, '' in the covered cells), Number as float and DateTime as datetime (what
    calamine gives for an xlsx), everything else as text."""
    from lxml import etree

    parser = etree.XMLParser(
        encoding="utf-8", resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True
    )
    try:
        root = etree.fromstring(text.encode("utf-8", "surrogatepass"), parser=parser)
    except etree.XMLSyntaxError as e:
        raise UnreadableFile(f"not a well-formed XML Spreadsheet 2003 document ({_plain(e)})") from e
    ns = {"ss": _SS}
    index, merge_across, merge_down, type_, name_ = (
        f"{{{_SS}}}{a}" for a in ("Index", "MergeAcross", "MergeDown", "Type", "Name")
    )
    sheets = []
    for ws in root.iterfind("ss:Worksheet", ns):
        rows: list[list[object]] = []
        covered: dict[tuple[int, int], bool] = {}  # (row, column) covered by a MergeDown from above
        for tr in ws.iterfind("ss:Table/ss:Row", ns):
            r = int(tr.get(index, len(rows) + 1)) - 1
            while len(rows) < r:
                rows.append([])
            row: list[object] = []
            for cell in tr.iterfind("ss:Cell", ns):
                if cell.get(index):
                    c = int(cell.get(index)) - 1
                else:
                    c = len(row)
                    while covered.get((r, c)):
                        c += 1
                row.extend([""] * (c - len(row)))
                data = cell.find("ss:Data", ns)
                row.append(_xml_value(data, type_) if data is not None else "")
                across = min(int(cell.get(merge_across, 0) or 0), MAX_SPAN)
                down = min(int(cell.get(merge_down, 0) or 0), MAX_SPAN)
                row.extend([""] * across)
                for dr in range(1, down + 1):
                    for dc in range(across + 1):
                        covered[(r + dr, c + dc)] = True
            rows.append(row)
        if rows:
            sheets.append((ws.get(name_) or f"Sheet{len(sheets) + 1}", rows))
    if not sheets:
        raise UnreadableFile("the XML Spreadsheet 2003 document has no cells (没有数据)")
    return sheets


def _xml_value(data, type_attr: str) -> object:
    text = "".join(data.itertext())
    kind = data.get(type_attr, "String")
    if kind == "Number":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "DateTime":
        try:
            return dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return text
    if kind == "Boolean":
        return text.strip() in ("1", "true", "TRUE")
    return text
