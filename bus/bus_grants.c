/*  bus_grants.c: standing grants, see bus_grants.h. */
#include "bus_grants.h"
#include "bus_record.h"
#include "bus_wire.h"
#include "med_hold.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define BUS_GRANT_COUNT_MAX     1000
#define BUS_GRANT_MINUTES_MAX   1440    //  also the life of a grant by count only
#define BUS_GRANT_SECONDS_MAX   (BUS_GRANT_MINUTES_MAX * 60)
#define BUS_FIELD_MAX           256

//  Records a grant's transition: whose messages it covers (sender ->
//  recipient), who acted, and what is left. 0 or -1 (failed closed).
static int
s_record (bus_core_t *core, const bus_grant_t *grant, const char *actor, bus_code_t code,
          const char *event, uint64_t ref_seq)
{
    record_t rec;
    bus_record_init (core, &rec, BULKHEAD__V1__RECORD_KIND__RECORD_HOLD);
    rec.sender = (char *) grant->sender;
    rec.recipient = (char *) grant->recipient;
    rec.actor = (char *) actor;
    rec.intent_class = (char *) grant->intent_class;
    rec.action = grant->action [0]? (char *) grant->action: NULL;
    rec.approval_id = (char *) grant->id;
    rec.has_ref_seq = ref_seq > 0;
    rec.ref_seq = ref_seq;
    rec.has_remaining = grant->counted;
    rec.remaining = grant->remaining;
    rec.n_approvers = 1;
    char *approvers [1] = { (char *) grant->approver };
    rec.approvers = approvers;
    rec.code = (char *) bus_errword (code);
    rec.event = (char *) event;
    return bus_core_append (core, &rec);
}

//  Ends a grant: logged once, then gone from memory and the database.
static void
s_end (bus_core_t *core, bus_grant_t *grant, const char *actor, bus_code_t code, const char *event)
{
    s_record (core, grant, actor, code, event, 0);
    bus_core_say (core, "BUS-GRANT", "id=%s state=ended by=%s event=\"%s\"", grant->id,
                  actor? actor: "-", event);
    bus_error_t err;
    if (bus_holds_grant_save (core->holds, grant, true, &err) != 0) {
        bus_core_fail (core, &err);
    }
}

void
bus_grants_expire (bus_core_t *core, uint64_t now_us)
{
    //  Backwards: ending a grant moves the last one into its place.
    for (uint32_t i = bus_holds_grant_count (core->holds); i-- > 0 && !core->failed; ) {
        bus_grant_t *grant = bus_holds_grant_at (core->holds, i);
        if (grant->expires_us <= now_us) {
            char event [80];
            snprintf (event, sizeof event, "grant %s expired", grant->id);
            s_end (core, grant, NULL, BUS_EEXPIRED, event);
        }
    }
}

void
bus_grants_sweep (bus_core_t *core)
{
    for (uint32_t i = bus_holds_grant_count (core->holds); i-- > 0 && !core->failed; ) {
        bus_grant_t *grant = bus_holds_grant_at (core->holds, i);
        const bus_agent_t *approver = bus_policy_agent (core->policy, grant->approver);
        char why [300];
        if (!approver) {
            snprintf (why, sizeof why, "no agent '%s' in the policy", grant->approver);
        }
        else
        if (med_hold_grant_allowed (core->policy, approver, grant->sender, grant->recipient,
                                    grant->intent_class, why, sizeof why) == BUS_OK) {
            continue;
        }
        char event [400];
        snprintf (event, sizeof event, "grant %s ended: the policy no longer allows it (%.300s)",
                  grant->id, why);
        s_end (core, grant, NULL, BUS_EPERM, event);
    }
}

void
bus_grants_use (bus_core_t *core, const char *id, const record_t *rec)
{
    bus_grant_t *grant = bus_holds_grant_find (core->holds, id);
    if (!grant) {
        return;
    }
    char event [120];
    if (grant->counted) {
        grant->remaining--;
        snprintf (event, sizeof event, "grant %s used (%u left)", grant->id, grant->remaining);
    }
    else {
        snprintf (event, sizeof event, "grant %s used (until its time ends)", grant->id);
    }
    if (s_record (core, grant, grant->approver, BUS_OK, event, rec->seq) != 0) {
        return;
    }
    bus_core_say (core, "BUS-GRANT", "id=%s seq=%llu event=\"%s\"", grant->id,
                  (unsigned long long) rec->seq, event);
    if (grant->counted && grant->remaining == 0) {
        snprintf (event, sizeof event, "grant %s used up", grant->id);
        s_end (core, grant, NULL, BUS_OK, event);
        return;
    }
    bus_error_t err;
    if (bus_holds_grant_save (core->holds, grant, false, &err) != 0) {
        bus_core_fail (core, &err);
    }
}

static bus_code_t
s_revoke (bus_core_t *core, const bus_agent_t *me, const char *id, char *line, size_t line_size,
          char *reason, size_t size)
{
    bus_grant_t *grant = bus_holds_grant_find (core->holds, id);
    if (!grant) {
        snprintf (reason, size, "no live grant '%.32s' (ended grants are in the log: "
                  "bulkhead log --kind hold)", id);
        return BUS_ENOTFOUND;
    }
    if (strcmp (grant->approver, me->name) != 0 && !(me->roles & BUS_ROLE_OPERATOR)) {
        snprintf (reason, size, "%s may not revoke %s: only its approver %s or an operator may",
                  me->name, grant->id, grant->approver);
        return BUS_EPERM;
    }
    snprintf (line, line_size, "%s", grant->id);
    snprintf (reason, size, "grant %s revoked by %s", grant->id, me->name);
    s_end (core, grant, me->name, BUS_OK, reason);
    return BUS_OK;
}

bus_code_t
bus_grants_control (bus_core_t *core, bus_peer_t *peer, const Bulkhead__V1__Control *control,
                    Bulkhead__V1__ControlReply *reply, char *reason, size_t size)
{
    //  The reply is packed before the next control frame is handled.
    static char line [BUS_HOLD_ID_MAX + 1];
    static char *lines [1] = { line };
    const bus_agent_t *me = peer->agent;
    uint32_t count = control->has_count? control->count: 0;
    uint32_t minutes = control->has_minutes? control->minutes: 0;
    uint32_t seconds = control->has_seconds? control->seconds: 0;
    if (control->id && !count && !minutes && !seconds) {
        bus_code_t code = s_revoke (core, me, control->id, line, sizeof line, reason, size);
        if (code == BUS_OK) {
            reply->n_lines = 1;
            reply->lines = lines;
        }
        return code;
    }
    if (control->id) {
        snprintf (reason, size, "a new grant takes no id; to revoke a grant give its id alone");
        return BUS_EINVAL;
    }
    if ((!count && !minutes && !seconds) || count > BUS_GRANT_COUNT_MAX
    ||  minutes > BUS_GRANT_MINUTES_MAX || seconds > BUS_GRANT_SECONDS_MAX) {
        snprintf (reason, size, "a grant needs count 1..%d and/or minutes 1..%d (or seconds 1..%d)",
                  BUS_GRANT_COUNT_MAX, BUS_GRANT_MINUTES_MAX, BUS_GRANT_SECONDS_MAX);
        return BUS_EINVAL;
    }
    const char *sender = control->agent? control->agent: "";
    const char *recipient = control->recipient? control->recipient: "";
    const char *class_name = control->intent_class? control->intent_class: "";
    if (!bus_name_valid (sender, strlen (sender)) || !bus_name_valid (recipient, strlen (recipient))
    ||  !bus_name_valid (class_name, strlen (class_name))) {
        snprintf (reason, size, "a grant names its sender (agent), recipient and intent class "
                  "(a-z 0-9 . _ -)");
        return BUS_EINVAL;
    }
    if (control->action && !bus_id_valid (control->action, BUS_FIELD_MAX)) {
        snprintf (reason, size, "action must be 1-%d printable ASCII characters", BUS_FIELD_MAX);
        return BUS_EINVAL;
    }
    bus_code_t code = med_hold_grant_allowed (core->policy, me, sender, recipient, class_name,
                                              reason, size);
    if (code != BUS_OK) {
        return code;
    }
    bus_grant_t grant;
    memset (&grant, 0, sizeof grant);
    uint8_t raw [6];
    randombytes_buf (raw, sizeof raw);
    char hex [13];
    sodium_bin2hex (hex, sizeof hex, raw, sizeof raw);
    snprintf (grant.id, sizeof grant.id, "g-%s", hex);
    snprintf (grant.approver, sizeof grant.approver, "%s", me->name);
    snprintf (grant.sender, sizeof grant.sender, "%s", sender);
    snprintf (grant.recipient, sizeof grant.recipient, "%s", recipient);
    snprintf (grant.intent_class, sizeof grant.intent_class, "%s", class_name);
    snprintf (grant.action, sizeof grant.action, "%s", control->action? control->action: "");
    grant.counted = count > 0;
    grant.remaining = count;
    //  Nothing standing is forever: a grant by count ends after a day too.
    uint64_t life_s = minutes? minutes * UINT64_C (60): seconds? seconds: BUS_GRANT_SECONDS_MAX;
    grant.created_us = bus_now_us ();
    grant.expires_us = grant.created_us + life_s * 1000000u;
    bus_error_t err;
    if (bus_holds_grant_add (core->holds, &grant, &err) != 0) {
        if (err.code != BUS_EINVAL) {
            bus_core_fail (core, &err);
        }
        snprintf (reason, size, "%s", err.text);
        return err.code;
    }
    char limit [48] = "";
    if (count) {
        snprintf (limit, sizeof limit, "next %u message%s, ", count, count == 1? "": "s");
    }
    snprintf (reason, size, "grant %s by %s: %s -> %s %s action=%.64s, %sfor %llu s", grant.id,
              me->name, sender, recipient, class_name, grant.action [0]? grant.action: "(none)",
              limit, (unsigned long long) life_s);
    s_record (core, &grant, me->name, BUS_OK, reason, 0);
    bus_core_say (core, "BUS-GRANT", "id=%s state=made event=\"%s\"", grant.id, reason);
    snprintf (line, sizeof line, "%s", grant.id);
    reply->n_lines = 1;
    reply->lines = lines;
    return BUS_OK;
}
