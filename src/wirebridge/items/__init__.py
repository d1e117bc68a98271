"""The Responses item model: what a conversation history is made of.

Items arrive as Responses JSON (dicts, as Codex and the OpenAI SDKs send them) and are parsed
once, at the edge, into small frozen classes; everything past the edge works on these.
`parse_item` names the item's index and the field when a known item is malformed; an unknown
`type` becomes an `OtherItem` that is kept (and dumped back) but never sent upstream.
`dump_item` is the exact inverse for the fields we use.

model.py  the classes     parse.py  dicts -> items     dump.py  items -> dicts
"""

from .dump import dump_item
from .model import (
    ITEM_CLASSES,
    ROLES,
    ContentPart,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    InputImage,
    InputText,
    Item,
    LocalShellCall,
    Message,
    OtherItem,
    OtherPart,
    OutputText,
    Reasoning,
    ReasoningPart,
    Role,
    ToolCallItem,
    ToolOutput,
    ToolOutputItem,
)
from .parse import parse_item, parse_items

__all__ = [
    "ITEM_CLASSES",
    "ROLES",
    "ContentPart",
    "CustomToolCall",
    "CustomToolCallOutput",
    "FunctionCall",
    "FunctionCallOutput",
    "InputImage",
    "InputText",
    "Item",
    "LocalShellCall",
    "Message",
    "OtherItem",
    "OtherPart",
    "OutputText",
    "Reasoning",
    "ReasoningPart",
    "Role",
    "ToolCallItem",
    "ToolOutput",
    "ToolOutputItem",
    "dump_item",
    "parse_item",
    "parse_items",
]
