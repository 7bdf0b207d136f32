"""Column names, vocabularies and Arrow schemas of every table synthmob writes.

One place for names: every other module refers to these constants, so a column is renamed here or nowhere.
Units are in the names (``_m``, ``_s``, ``_km``); timestamps are UTC, timezone-aware, millisecond resolution.
"""

from __future__ import annotations

import pyarrow as pa

# --- identifiers and the test network --------------------------------------------------------------------
MCC = "001"  # ITU-T E.212 reserves MCC 001 with MNC 01 for test networks.
MNC = "01"

# --- vocabularies ------------------------------------------------------------------------------------------
ACTIVITIES = ("home", "work", "school", "other")
MODES = ("walk", "car", "transit")
PERSONAS = ("commuter", "student", "shift_worker", "home_based", "visitor")
RADIOS = ("GSM", "UMTS", "LTE", "NR")
GENDERS = ("female", "male")

TIMESTAMP = pa.timestamp("ms", tz="UTC")


def _dictionary() -> pa.DataType:
    return pa.dictionary(pa.int8(), pa.string())


# --- cells -------------------------------------------------------------------------------------------------
CELL_ID = "cell_id"
SITE_ID = "site_id"
CELLS = pa.schema(
    [
        pa.field(CELL_ID, pa.int32(), nullable=False),
        pa.field(SITE_ID, pa.int32(), nullable=False),
        pa.field("mcc", pa.string(), nullable=False),
        pa.field("mnc", pa.string(), nullable=False),
        pa.field("area_code", pa.int32(), nullable=False),  # LAC (GSM/UMTS) or TAC (LTE/NR)
        pa.field("ci", pa.int64(), nullable=False),  # network cell identity (ECI/NCI/CI)
        pa.field("cgi", pa.string(), nullable=False),  # MCC-MNC-area-ci
        pa.field("radio", pa.string(), nullable=False),
        pa.field("lat", pa.float64(), nullable=False),  # the antenna (site) position, WGS84
        pa.field("lon", pa.float64(), nullable=False),
        pa.field("centroid_lat", pa.float64(), nullable=False),  # centroid of the coverage polygon
        pa.field("centroid_lon", pa.float64(), nullable=False),
        pa.field("x_m", pa.float64(), nullable=False),  # the cell's reference point, metres from the SW corner
        pa.field("y_m", pa.float64(), nullable=False),
        pa.field("azimuth_deg", pa.float64(), nullable=True),  # null for an omnidirectional cell
        pa.field("range_m", pa.float64(), nullable=False),
        pa.field("coverage_km2", pa.float64(), nullable=False),
        pa.field("urban", pa.bool_(), nullable=False),
        pa.field("residents", pa.float64(), nullable=False),  # modelled residents in the coverage area
        pa.field("jobs", pa.float64(), nullable=False),  # relative job opportunities
        pa.field("coverage_wkt", pa.string(), nullable=False),
    ]
)

# --- subscribers -------------------------------------------------------------------------------------------
SUBSCRIBER_ID = "subscriber_id"
#: Who a subscriber is in the model: demographics, persona, anchors.
POPULATION = pa.schema(
    [
        pa.field(SUBSCRIBER_ID, pa.int64(), nullable=False),
        pa.field("shard", pa.int32(), nullable=False),
        pa.field("age_band", pa.string(), nullable=False),
        pa.field("gender", pa.string(), nullable=False),
        pa.field("persona", pa.string(), nullable=False),
        pa.field("home_cell", pa.int32(), nullable=False),
        pa.field("work_cell", pa.int32(), nullable=True),  # work or school; null when there is none
        pa.field("car", pa.bool_(), nullable=False),
    ]
)
#: How the network and the world know a subscriber: identifiers that can never be real, and fictional names.
IDENTITY = pa.schema(
    [
        pa.field("imsi", pa.string(), nullable=False),  # 001 01 + 10 digits (test network)
        pa.field("imei", pa.string(), nullable=False),  # TAC (test range 00) + serial + Luhn check digit
        pa.field("tac", pa.string(), nullable=False),
        pa.field("device_brand", pa.string(), nullable=False),
        pa.field("device_model", pa.string(), nullable=False),
        pa.field("device_type", pa.string(), nullable=False),  # smartphone, feature_phone, modem
        pa.field("msisdn", pa.string(), nullable=False),  # E.164 from a fiction range, or a pseudonym token
        pa.field("given_name", pa.string(), nullable=False),
        pa.field("family_name", pa.string(), nullable=False),
        pa.field("email", pa.string(), nullable=False),  # at example.com/.org/.net (RFC 2606)
    ]
)
SUBSCRIBERS = pa.schema(list(POPULATION) + list(IDENTITY))

# --- ground truth ------------------------------------------------------------------------------------------
STAYS = pa.schema(
    [
        pa.field(SUBSCRIBER_ID, pa.int64(), nullable=False),
        pa.field(CELL_ID, pa.int32(), nullable=False),
        pa.field("start", TIMESTAMP, nullable=False),
        pa.field("end", TIMESTAMP, nullable=False),
        pa.field("activity", pa.string(), nullable=False),
    ]
)

PATH_STEP = pa.struct([pa.field(CELL_ID, pa.int32(), nullable=False), pa.field("entered", TIMESTAMP, nullable=False)])
TRIPS = pa.schema(
    [
        pa.field(SUBSCRIBER_ID, pa.int64(), nullable=False),
        pa.field("from_cell", pa.int32(), nullable=False),
        pa.field("to_cell", pa.int32(), nullable=False),
        pa.field("depart", TIMESTAMP, nullable=False),
        pa.field("arrive", TIMESTAMP, nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("path", pa.list_(PATH_STEP), nullable=False),
    ]
)

# --- the operator's view ------------------------------------------------------------------------------------
#: ``event_type`` values, and what one record of each is:
EVENT_TYPES = {
    "voice": "a voice call leg; direction 'out' for the caller, 'in' for the callee; duration_s is the call's",
    "sms": "an SMS leg; direction 'out' for the sender, 'in' for the recipient",
    "data": "a data session (xDR) starting at timestamp, with duration_s, bytes_up and bytes_down",
    "handover": "a call or data session moving to cell_id while in progress; call_id names the session",
    "location_update": "an idle subscriber entering a new location/tracking area (LAU/TAU)",
    "periodic_update": "a periodic location/tracking-area update after a quiet period (T3212/T3412)",
}
DIRECTIONS = ("out", "in")
EVENTS = pa.schema(
    [
        pa.field(SUBSCRIBER_ID, pa.int64(), nullable=False),
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field(CELL_ID, pa.int32(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("direction", pa.string(), nullable=True),  # voice and sms only
        pa.field("counterpart_id", pa.int64(), nullable=True),  # the other party of a voice call or SMS
        pa.field("call_id", pa.int64(), nullable=True),  # shared by both legs of a call/SMS; a session's id
        pa.field("duration_s", pa.float64(), nullable=True),  # voice and data
        pa.field("bytes_up", pa.int64(), nullable=True),  # data only
        pa.field("bytes_down", pa.int64(), nullable=True),
    ]
)

#: Tables written as date-partitioned datasets, and their schemas.
DATASETS = {"stays": STAYS, "trips": TRIPS, "events": EVENTS}
#: The social network behind calls and SMS: one row per tie between two subscribers.
CONTACTS = pa.schema(
    [
        pa.field("subscriber_a", pa.int64(), nullable=False),
        pa.field("subscriber_b", pa.int64(), nullable=False),  # subscriber_a < subscriber_b
        pa.field("weight", pa.float64(), nullable=False),  # tie strength: calls are picked in proportion
    ]
)

#: Tables written as one Parquet file.
SINGLE_FILES = {"cells": CELLS, "subscribers": SUBSCRIBERS, "contacts": CONTACTS}
