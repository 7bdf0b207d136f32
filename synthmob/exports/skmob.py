"""scikit-mobility: a TrajDataFrame of the positions seen through the operator's records."""

from __future__ import annotations

import pyarrow as pa

from synthmob import schema
from synthmob.exports.files import Files, events_table, index_of
from synthmob.run import Run

# --- scikit-mobility ---------------------------------------------------------------------------------------
# Column names: skmob/utils/constants.py (UID = 'uid', DATETIME = 'datetime', LATITUDE = 'lat',
# LONGITUDE = 'lng'). Dtypes: TrajDataFrame._is_trajdataframe/_set_traj in skmob/core/trajectorydataframe.py
# require a datetime64 'datetime' and float 'lat'/'lng' and coerce anything else with pd.to_datetime and
# astype('float'); scikit-mobility 1.3 pins pandas 1.x, whose datetimes are naive datetime64[ns].
SKMOB_SCHEMA = pa.schema(
    [("uid", pa.int64()), ("datetime", pa.timestamp("ns")), ("lat", pa.float64()), ("lng", pa.float64())]
)


def skmob(run: Run, out: Files) -> None:
    cells = run.table("cells")
    events = events_table(run, [schema.SUBSCRIBER_ID, "timestamp", schema.CELL_ID])
    where = index_of(cells[schema.CELL_ID].to_numpy(), events[schema.CELL_ID].to_numpy(), "cell_id", run)
    naive = events["timestamp"].cast(pa.timestamp("ms")).cast(pa.timestamp("ns"))  # UTC wall time, no zone
    table = pa.table(
        [events[schema.SUBSCRIBER_ID], naive, cells["lat"].take(where), cells["lon"].take(where)], schema=SKMOB_SCHEMA
    )
    out.both("trajectories", table)
