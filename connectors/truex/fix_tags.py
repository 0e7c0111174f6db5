"""TrueX FIX vocabulary: the tag numbers and the code tables (side, TIF, OrdStatus) in one place.

Split out of ``messages.py`` by job: builders, parsers, the client connector
and the local exchange all speak in these numbers and codes, so they are named
once here and nowhere else.
"""

from __future__ import annotations

from mmkit.model import Side, TimeInForce, VenueOrderStatus

SOH = "\x01"
BEGIN_STRING = "FIXT.1.1"

# Tags used here, named once.
T_MSG_TYPE, T_SEQ, T_SENDING_TIME, T_ORIG_SENDING_TIME, T_POSS_DUP = 35, 34, 52, 122, 43
T_CLORDID, T_ORIG_CLORDID, T_ORDER_ID, T_EXEC_ID, T_EXEC_TYPE, T_ORD_STATUS = 11, 41, 37, 17, 150, 39
T_SIDE, T_SYMBOL, T_QTY, T_PRICE, T_ORD_TYPE, T_TIF, T_EXEC_INST, T_TRANSACT_TIME = 54, 55, 38, 44, 40, 59, 18, 60
T_LAST_PX, T_LAST_QTY, T_CUM_QTY, T_LEAVES_QTY, T_COMMISSION, T_COMM_CCY, T_LIQUIDITY = 31, 32, 14, 151, 12, 479, 851
T_TEXT, T_ORD_REJ_REASON, T_CXL_REJ_REASON, T_CXL_REJ_RESPONSE_TO = 58, 103, 102, 434
T_REF_MSG_TYPE, T_BIZ_REJECT_REF_ID, T_BIZ_REJECT_REASON = 372, 379, 380
T_ORD_STATUS_REQ_ID, T_MASS_STATUS_REQ_ID, T_MASS_STATUS_REQ_TYPE = 790, 584, 585
T_TOT_NUM_REPORTS, T_LAST_RPT_REQUESTED = 911, 912
T_NO_PARTY_IDS, T_PARTY_ID, T_PARTY_ROLE = 453, 448, 452
T_MD_REQ_ID, T_SUB_REQ_TYPE, T_MARKET_DEPTH, T_MD_UPDATE_TYPE = 262, 263, 264, 265
T_NO_MD_ENTRY_TYPES, T_NO_RELATED_SYM, T_NO_MD_ENTRIES = 267, 146, 268
T_MD_ENTRY_TYPE, T_MD_ENTRY_PX, T_MD_ENTRY_SIZE, T_MD_ENTRY_TIME, T_MD_UPDATE_ACTION = 269, 270, 271, 273, 279
T_MD_ENTRY_ID, T_SECURITY_TYPE, T_MD_PRICE_LEVEL, T_APPL_SEQ_NUM, T_LAST_UPDATE_TIME = 278, 167, 1023, 1181, 779
T_USERNAME, T_PASSWORD = 553, 554
T_AVG_PX = 6

#: Tags never written to a log or a store (the API key and the logon signature).
SECRET_TAGS = (T_USERNAME, T_PASSWORD)

PARTY_ROLE_CLIENT_ID = "3"
EXEC_INST_POST_ONLY = "6"
ORD_TYPE_LIMIT, ORD_TYPE_MARKET = "2", "1"
_TIF_CODES = {TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
TIF_FROM_CODE = {code: tif for tif, code in _TIF_CODES.items()}
_SIDE_CODES = {Side.BUY: "1", Side.SELL: "2"}
SIDE_FROM_CODE = {"1": Side.BUY, "2": Side.SELL}
_ORD_STATUS = {
    "0": VenueOrderStatus.NEW,
    "1": VenueOrderStatus.PARTIALLY_FILLED,
    "2": VenueOrderStatus.FILLED,
    "4": VenueOrderStatus.CANCELED,
    "5": VenueOrderStatus.NEW,  # replaced: open under its new ClOrdID
    "8": VenueOrderStatus.REJECTED,
    "C": VenueOrderStatus.EXPIRED,
}
#: OrdStatus(39) -> our status, public for the connector's reading of cancel answers.
STATUS_FROM_CODE = _ORD_STATUS
ORD_STATUS_CODE = {
    VenueOrderStatus.NEW: "0",
    VenueOrderStatus.PARTIALLY_FILLED: "1",
    VenueOrderStatus.FILLED: "2",
    VenueOrderStatus.CANCELED: "4",
    VenueOrderStatus.REJECTED: "8",
    VenueOrderStatus.EXPIRED: "C",
}
