-- Search indexes: one table per search parameter kind, rows extracted at
-- write time for the current version of each resource (history is not
-- indexed). param is fhir.ParamKey(type, code); grp ties the parts of one
-- composite match together (0 for plain parameters). Rows are replaced
-- whenever the resource changes, in the same statement as the write.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE idx_string (
    rid   bigint  NOT NULL,
    param bigint  NOT NULL,
    grp   integer NOT NULL,
    norm  text    NOT NULL,  -- folded: lower case, no accents
    exact text    NOT NULL
);
CREATE INDEX idx_string_prefix ON idx_string (param, norm text_pattern_ops);
CREATE INDEX idx_string_exact ON idx_string (param, exact);
CREATE INDEX idx_string_trgm ON idx_string USING gin (norm gin_trgm_ops);
CREATE INDEX idx_string_rid ON idx_string (rid);

CREATE TABLE idx_token (
    rid    bigint  NOT NULL,
    param  bigint  NOT NULL,
    grp    integer NOT NULL,
    system text    NOT NULL,  -- '' when the element has no system
    code   text    NOT NULL,
    text   text    NOT NULL   -- folded display/text, for :text
);
CREATE INDEX idx_token_code ON idx_token (param, code, system);
CREATE INDEX idx_token_system ON idx_token (param, system);
CREATE INDEX idx_token_text ON idx_token (param, text text_pattern_ops);
CREATE INDEX idx_token_rid ON idx_token (rid);

CREATE TABLE idx_reference (
    rid     bigint  NOT NULL,
    param   bigint  NOT NULL,
    grp     integer NOT NULL,
    type    text    NOT NULL,  -- target type of a literal reference ('' otherwise)
    id      text    NOT NULL,  -- target id ('' otherwise)
    version text    NOT NULL,
    url     text    NOT NULL   -- absolute, urn: or canonical reference ('' otherwise)
);
CREATE INDEX idx_reference_target ON idx_reference (param, id, type);
CREATE INDEX idx_reference_back ON idx_reference (id, type, param);
CREATE INDEX idx_reference_url ON idx_reference (param, url) WHERE url <> '';
CREATE INDEX idx_reference_rid ON idx_reference (rid);

CREATE TABLE idx_date (
    rid   bigint      NOT NULL,
    param bigint      NOT NULL,
    grp   integer     NOT NULL,
    lo    timestamptz NOT NULL,  -- inclusive
    hi    timestamptz NOT NULL   -- exclusive
);
CREATE INDEX idx_date_lo ON idx_date (param, lo);
CREATE INDEX idx_date_hi ON idx_date (param, hi);
CREATE INDEX idx_date_rid ON idx_date (rid);

CREATE TABLE idx_number (
    rid   bigint  NOT NULL,
    param bigint  NOT NULL,
    grp   integer NOT NULL,
    value numeric NOT NULL,
    lo    numeric NOT NULL,
    hi    numeric NOT NULL
);
CREATE INDEX idx_number_value ON idx_number (param, value);
CREATE INDEX idx_number_rid ON idx_number (rid);

CREATE TABLE idx_quantity (
    rid    bigint  NOT NULL,
    param  bigint  NOT NULL,
    grp    integer NOT NULL,
    value  numeric NOT NULL,
    lo     numeric NOT NULL,
    hi     numeric NOT NULL,
    system text    NOT NULL,
    code   text    NOT NULL,
    unit   text    NOT NULL
);
CREATE INDEX idx_quantity_value ON idx_quantity (param, value);
CREATE INDEX idx_quantity_code ON idx_quantity (param, code, value);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid);

CREATE TABLE idx_uri (
    rid   bigint  NOT NULL,
    param bigint  NOT NULL,
    grp   integer NOT NULL,
    value text    NOT NULL
);
CREATE INDEX idx_uri_value ON idx_uri (param, value text_pattern_ops);
CREATE INDEX idx_uri_rid ON idx_uri (rid);

-- Search results are ordered by rid (creation order) unless _sort says
-- otherwise, and paged by keyset on the sort keys and rid.
CREATE INDEX resources_type_rid ON resources (type, rid) WHERE NOT deleted;
CREATE INDEX resources_type_updated ON resources (type, last_updated, rid) WHERE NOT deleted;
