/*-------------------------------------------------------------------------
 * report.c
 *		What is done with a verdict: rollguard.enforce (defined here)
 *		decides between the refusal (ERROR) and the warning; an administrator's override lets a
 *		change through with a NOTICE and a line in rollguard.history.
 *
 * The messages' texts are the change kinds' (change.c); a blocker's line
 * in the DETAIL is one of four sentences below.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/json.h"

#include "rollguard.h"

/* rollguard.enforce */
int			rg_enforce = RG_ENFORCE_ON;

static const struct config_enum_entry enforce_options[] = {
	{"on", RG_ENFORCE_ON, false},
	{"warn", RG_ENFORCE_WARN, false},
	{"off", RG_ENFORCE_OFF, false},
	{"true", RG_ENFORCE_ON, true},
	{"false", RG_ENFORCE_OFF, true},
	{NULL, 0, false}
};

void
rg_report_define_settings(void)
{
	/*
	 * Superuser only: letting the application role relax the guard would
	 * defeat its point.
	 */
	DefineCustomEnumVariable("rollguard.enforce",
							 "What rollguard does with a schema change that breaks a live version.",
							 "on refuses it, warn reports it as a WARNING and lets it through, off checks nothing.",
							 &rg_enforce,
							 RG_ENFORCE_ON,
							 enforce_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}

/* how many blockers a refusal names to the client (all go to the log) */
#define MAX_REPORTED_BLOCKERS 100

static int
count_deployments(List *blockers)
{
	int			n = 0;
	const char *prev = NULL;
	ListCell   *lc;

	/* blockers are ordered by deployment */
	foreach(lc, blockers)
	{
		RgBlocker  *b = lfirst(lc);

		if (prev == NULL || strcmp(prev, b->deployment) != 0)
			n++;
		prev = b->deployment;
	}
	return n;
}

/* One blocker's sentence in the DETAIL. */
static void
append_blocker(StringInfo buf, RgBlocker *b)
{
	if (b->evidence == NULL && !b->rolling_out)
		appendStringInfo(buf, _("Deployment \"%s\" runs version \"%s\", which %s."),
						 b->deployment, b->version, b->reason);
	else if (b->evidence == NULL)
		appendStringInfo(buf, _("Deployment \"%s\" is rolling out version \"%s\", which %s."),
						 b->deployment, b->version, b->reason);
	else if (!b->rolling_out)
		appendStringInfo(buf, _("Deployment \"%s\" runs version \"%s\" (%s), which %s."),
						 b->deployment, b->version, b->evidence, b->reason);
	else
		appendStringInfo(buf, _("Deployment \"%s\" is rolling out version \"%s\" (%s), which %s."),
						 b->deployment, b->version, b->evidence, b->reason);
}

/* Emits the refusal (ERROR) or the warning for one blocked change. */
static void
report(int elevel, RgChange *ch, List *blockers, int more_changes)
{
	const RgChangeDesc *desc = rg_change_desc(ch->kind);
	int			n = count_deployments(blockers);
	StringInfoData detail;
	StringInfoData client_detail;
	ListCell   *lc;

	/*
	 * Every blocker, one line each, for the server log; the client gets the
	 * first MAX_REPORTED_BLOCKERS of them (as PostgreSQL reports dependent
	 * objects), so that a refusal at ten thousand deployments stays
	 * readable.
	 */
	initStringInfo(&detail);
	initStringInfo(&client_detail);
	if (desc->dependent)
		appendStringInfo(&detail, "%s\n", _("The statement removes it as a dependent object."));
	foreach(lc, blockers)
	{
		if (foreach_current_index(lc) == MAX_REPORTED_BLOCKERS)
			appendBinaryStringInfo(&client_detail, detail.data, detail.len);
		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(&detail, '\n');
		append_blocker(&detail, lfirst(lc));
	}
	if (list_length(blockers) > MAX_REPORTED_BLOCKERS)
		appendStringInfo(&client_detail,
						 _("\nand %d more (see the server log for the list; rollguard.check() returns it)"),
						 list_length(blockers) - MAX_REPORTED_BLOCKERS);
	if (more_changes > 0)
	{
		char	   *more;

		/* judged at commit, the changes are the transaction's */
		if (ch->statement)
			more = psprintf(ngettext("The transaction makes %d more breaking change; rollguard.check() lists it.",
									 "The transaction makes %d more breaking changes; rollguard.check() lists them.",
									 more_changes),
							more_changes);
		else
			more = psprintf(ngettext("The statement makes %d more breaking change; rollguard.check() lists it.",
									 "The statement makes %d more breaking changes; rollguard.check() lists them.",
									 more_changes),
							more_changes);

		appendStringInfo(&detail, "\n%s", more);
		if (client_detail.len > 0)
			appendStringInfo(&client_detail, "\n%s", more);
	}

	/* arguments in the order change.c gives */
	ereport(elevel,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg_plural(desc->message, desc->message_plural, n,
						   n, rg_relkind_word(ch->relkind), ch->nspname, ch->relname,
						   ch->attname ? ch->attname : ch->target),
			 errdetail_internal("%s", client_detail.len > 0 ? client_detail.data : detail.data),
			 client_detail.len > 0 ? errdetail_log("%s", detail.data) : 0,
			 errhint("%s", _(desc->hint)),
			 ch->statement ? errcontext("the transaction leaves the change made by \"%s\"",
										ch->statement) : 0));
}

/* An administrator's override lets a breaking change through: say so, and
 * append what it overrode to rollguard.history. */
static void
apply_override(RgChange *ch, List *blockers, const char *reason)
{
	const char *label = rg_change_desc(ch->kind)->label;
	int			n = count_deployments(blockers);
	StringInfoData json;
	ListCell   *lc;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"change\": ");
	escape_json(&json, label);
	appendStringInfoString(&json, ", \"blockers\": [");
	foreach(lc, blockers)
	{
		RgBlocker  *b = lfirst(lc);

		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&json, ", ");
		appendStringInfoString(&json, "{\"deployment\": ");
		escape_json(&json, b->deployment);
		appendStringInfoString(&json, ", \"version\": ");
		escape_json(&json, b->version);
		appendStringInfoString(&json, ", \"reason\": ");
		escape_json(&json, b->reason);
		if (b->evidence)
		{
			appendStringInfoString(&json, ", \"evidence\": ");
			escape_json(&json, b->evidence);
		}
		appendStringInfoChar(&json, '}');
	}
	appendStringInfoString(&json, "]}");

	rg_log_history("override applied", ch->nspname, ch->relname, ch->attname, reason, json.data);
	if (ch->attname)
		ereport(NOTICE,
				(errmsg_plural("override lets %s on %s.%s.%s through, although %d deployment still uses it",
							   "override lets %s on %s.%s.%s through, although %d deployments still use it",
							   n, label, ch->nspname, ch->relname, ch->attname, n),
				 errdetail("Reason given: %s", reason)));
	else
		ereport(NOTICE,
				(errmsg_plural("override lets %s on %s.%s through, although %d deployment still uses it",
							   "override lets %s on %s.%s through, although %d deployments still use it",
							   n, label, ch->nspname, ch->relname, n),
				 errdetail("Reason given: %s", reason)));
}

/*
 * Evaluates every change of a statement and acts on rollguard.enforce: "on"
 * refuses the first breaking change (naming all its blockers, and counting
 * the others), "warn" reports each one.  The caller holds the registry lock
 * (rg_lock_registry()).  Returns the changes that broke nothing (to be
 * judged again at the commit: net_effect.c); NIL if nothing was judged.
 */
List *
rg_enforce_changes(List *changes)
{
	List	   *blocked = NIL;
	List	   *blockers_of = NIL;
	List	   *clean = NIL;
	List	   *sessions;
	ListCell   *lc;
	ListCell   *bc;

	if (rg_enforce == RG_ENFORCE_OFF || changes == NIL)
		return NIL;

	/* a session is not evidence against its own statements */
	sessions = rg_live_sessions(false);
	foreach(lc, changes)
	{
		RgChange   *ch = lfirst(lc);
		List	   *blockers = rg_evaluate(ch, sessions);
		const char *override_reason;

		if (blockers == NIL)
		{
			clean = lappend(clean, ch);
			continue;
		}
		override_reason = rg_override_reason(ch);
		if (override_reason != NULL)
			apply_override(ch, blockers, override_reason);
		else
		{
			blocked = lappend(blocked, ch);
			blockers_of = lappend(blockers_of, blockers);
		}
	}
	if (blocked == NIL)
		return clean;

	if (rg_enforce == RG_ENFORCE_ON)
		report(ERROR, linitial(blocked), linitial(blockers_of), list_length(blocked) - 1);

	forboth(lc, blocked, bc, blockers_of)
		report(WARNING, lfirst(lc), lfirst(bc), 0);
	return clean;
}
