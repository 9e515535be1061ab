-- Reports across all outlets of a tenant for a period (the monthly tax report) read the
-- tenant's sales of those days only, from the index alone where the visibility map
-- allows (it carries what those reports sum).
CREATE INDEX sales_tenant_day ON sales (tenant_id, business_date)
    INCLUDE (store_id, status, tax_kind, dpp, dpp_other, tax, refunded);
