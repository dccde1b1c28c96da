"""The QuickBooks plugin's conformance adapter: how ``hub.testing.conformance`` starts the simulator,
points the plugin at it, connects through Intuit's consent, and what records and webhooks look like."""

from __future__ import annotations

import hub_quickbooks.plugin
from hub.testing.adapter import DemoPlace, DemoStep, ProviderAdapter
from hub_quickbooks.simulator import CLIENT_ID, CLIENT_SECRET, VERIFIER_TOKEN, QuickBooksSimulator
from hub_quickbooks.webhooks import signature

PUSHED = {"client": "Customer", "vendor": "Vendor", "invoice": "Invoice"}


class QuickBooksAdapter(ProviderAdapter):
    provider = "quickbooks"
    plugin = ("quickbooks", hub_quickbooks.plugin)
    probe = ("get_company_info", {})

    def simulator(self) -> QuickBooksSimulator:
        return QuickBooksSimulator()

    def environ(self, simulator: QuickBooksSimulator) -> dict[str, str]:
        return {"QUICKBOOKS_BASE_URL": simulator.url, "QUICKBOOKS_CLIENT_ID": CLIENT_ID,
                "QUICKBOOKS_CLIENT_SECRET": CLIENT_SECRET, "QUICKBOOKS_VERIFIER_TOKEN": VERIFIER_TOKEN}

    def wrong_client_environ(self, simulator: QuickBooksSimulator) -> dict[str, str]:
        return self.environ(simulator) | {"QUICKBOOKS_CLIENT_SECRET": "not-the-client-secret"}

    def secrets(self, simulator: QuickBooksSimulator) -> list[str]:
        state = simulator.state
        with state.lock:
            issued = list(state.access_tokens) + list(state.refresh_tokens) + list(state.revoked)
        return super().secrets(simulator) + [CLIENT_SECRET, VERIFIER_TOKEN] + issued

    def outbound_samples(self):
        clients = [{"id": f"client-{n}", "company_name": f"Client {n} LLC", "email": f"c{n}@example.com"}
                   for n in range(3)]
        return {
            "client": clients,
            "vendor": [{"id": "ven-1", "company_name": "Lumber Co", "tax_id": "12-3456789"}],
            "invoice": [{"id": "inv-1", "client_id": "client-0", "invoice_number": "INV-1",
                         "invoice_date": "2026-11-02", "due_date": "2026-12-02",
                         "line_items": [{"description": "Demolition", "quantity": "2", "unit_price": "150.00"}]}],
        }

    def remote_count(self, simulator: QuickBooksSimulator, entity: str) -> int:
        return len(simulator.state.objects(PUSHED[entity]))

    def seed_inbound(self, simulator: QuickBooksSimulator) -> None:
        """What an accountant has in QuickBooks: a customer, a vendor, an invoice and its payment (the
        chart of accounts comes with every company)."""
        state = simulator.state
        company = state.company()
        customer = state._create(company, "Customer", {"DisplayName": "Seed Homes"})
        state._create(company, "Vendor", {"DisplayName": "Seed Supply"})
        invoice = state._create(company, "Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": [
            {"Amount": 100, "DetailType": "SalesItemLineDetail", "Description": "Work",
             "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 100}}]})
        state.make_payment(invoice["Id"], "40.00")

    def webhook(self, simulator: QuickBooksSimulator, connection, *, secret: str = "good"):
        body, headers = simulator.state.webhook_request([("Payment", "1", "Create")],
                                                        realm_id=connection["external_account_id"])
        if secret != "good":
            headers = headers | {"intuit-signature": signature("someone-elses-verifier-token", body)}
        return body, headers

    # -- demo mode ------------------------------------------------------------------------------------
    def demo_steps(self, simulator: QuickBooksSimulator) -> list[DemoStep]:
        clients = [{"id": "client-oak", "company_name": "Oak Street Homes", "email": "ap@oakstreet.example",
                    "phone": "+1 312 555 0100"},
                   {"id": "client-lee", "first_name": "Dana", "last_name": "Lee", "email": "dana@example.com"}]
        invoice = {"id": "inv-1001", "client_id": "client-oak", "invoice_number": "INV-1001",
                   "invoice_date": "2026-12-01", "due_date": "2026-12-31", "job_name": "Oak St remodel",
                   "line_items": [{"description": "Demolition", "quantity": "2", "unit_price": "750.00"},
                                  {"description": "Framing", "quantity": "1", "unit_price": "2400.00"}]}
        synced = {"provider": "quickbooks", "direction": "outbound", "status": "completed", "failed": 0}
        return [
            DemoStep("QuickBooks: sync two clients (one batch request; run it again and nothing is sent)",
                     "POST", "/v1/connections/quickbooks/syncs", {"entity": "client", "records": clients},
                     events=("sync.completed",), data={"sync.completed": synced | {"entity": "client"}}),
            DemoStep("QuickBooks: invoice one of them", "POST", "/v1/connections/quickbooks/syncs",
                     {"entity": "invoice", "records": [invoice]},
                     events=("sync.completed",), data={"sync.completed": synced | {"entity": "invoice"}}),
            DemoStep("QuickBooks: the client pays $1,000 of it in QuickBooks (Intuit then notifies the hub)",
                     "POST", "pay-invoice", {"invoice_number": "INV-1001", "amount": "1000.00"},
                     target="provider", events=("payment.received",),
                     data={"payment.received": {"invoice_id": "inv-1001"}},
                     note="the payment is imported once however often Intuit repeats the notification"),
        ]

    def demo_triggers(self):
        return {"pay-invoice": _pay_invoice}


def _pay_invoice(simulator: QuickBooksSimulator, body: dict, place: DemoPlace) -> dict:
    """A customer pays an invoice, recorded in QuickBooks; Intuit notifies the hub of the new payment."""
    number, amount = body.get("invoice_number"), body.get("amount")
    if not isinstance(number, str):
        raise ValueError("invoice_number (the invoice's number, e.g. INV-1001) is required")
    realm = place.connection["external_account_id"]
    invoices = simulator.state.objects("Invoice", realm)
    found = [i for i in list(invoices.values()) if i.get("DocNumber") == number]
    if not found:
        raise LookupError(f"QuickBooks has no invoice {number} (sync it first)")
    payment = simulator.state.make_payment(found[0]["Id"], amount, method=str(body.get("method") or "Check"),
                                           realm_id=realm)
    answer = simulator.send_webhook(f"{place.hub_url}/v1/webhooks/quickbooks", [("Payment", payment["Id"], "Create")],
                                    realm_id=realm)
    return {"payment_id": payment["Id"], "amount": payment["TotalAmt"], "hub_answered": answer.status_code}
