"""CSV responses written from the same :class:`~billing.reports.tables.Table` a page shows."""

from __future__ import annotations

import csv

from django.http import HttpResponse

from billing.reports.tables import Table


def csv_response(table: Table, filename: str) -> HttpResponse:
    """``table`` (header, rows, totals row) as a downloadable UTF-8 CSV file."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerows(table.csv_rows())
    return response
