# Copyright 2026 towerhook contributors
# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from . import towerhook_notify_mixin
from . import cx_tower_webhook
from . import cx_tower_webhook_authenticator
from . import cx_tower_webhook_log
from . import cx_tower_key
from . import cx_tower_key_value
