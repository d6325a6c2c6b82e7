-- The access policy (auth/policy) caches, per caller, the resources it
-- decides with: CareTeams, Consents, the family Groups, the people and
-- organisations (store/postgres facts.go, PolicyTypes). Every committed
-- write of one of them is announced on the channel ouder_policy, so that
-- every instance drops what it cached (PostgreSQL delivers notifications
-- at commit, once per distinct payload per transaction, and never those of
-- a transaction that rolls back). Reindexing (which sets gen only) does not
-- change what the policy sees and is not announced.
CREATE FUNCTION ouder_policy_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ouder_policy', OLD.type);
    ELSE
        PERFORM pg_notify('ouder_policy', NEW.type);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER resources_policy_write
    AFTER INSERT OR UPDATE OF version, deleted, body ON resources
    FOR EACH ROW
    WHEN (NEW.type IN ('CareTeam', 'Consent', 'Group', 'Organization', 'Patient', 'Person',
                       'Practitioner', 'PractitionerRole', 'RelatedPerson'))
    EXECUTE FUNCTION ouder_policy_notify();

CREATE TRIGGER resources_policy_delete
    AFTER DELETE ON resources
    FOR EACH ROW
    WHEN (OLD.type IN ('CareTeam', 'Consent', 'Group', 'Organization', 'Patient', 'Person',
                       'Practitioner', 'PractitionerRole', 'RelatedPerson'))
    EXECUTE FUNCTION ouder_policy_notify();
