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

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

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
							 "on refuses it; warn reports it as a WARNING and lets it through; off lets it through silently. What warn and off let through is recorded in rollguard.history and the server log.",
							 &rg_enforce,
							 RG_ENFORCE_ON,
							 enforce_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}

/* how many blockers a refusal names to the client (all go to the log) */
#define MAX_REPORTED_BLOCKERS 100

/* deployments not seen whose removal the hint spells out, at most */
#define MAX_STALE_NAMED 5

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

/* The statement that made the change: the one judged at commit, or the
 * one running. */
static const char *
statement_of(RgChange *ch)
{
	if (ch->statement)
		return ch->statement;
	return debug_query_string ? debug_query_string : "";
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

/* "30 days", "5 hours", "3 minutes", "12 seconds" since a moment. */
static char *
age_words(TimestampTz since)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int64		secs = since < now ? (now - since) / USECS_PER_SEC : 0;

	if (secs >= SECS_PER_DAY)
		return psprintf(ngettext("%d day", "%d days", (unsigned long) (secs / SECS_PER_DAY)),
						(int) (secs / SECS_PER_DAY));
	if (secs >= SECS_PER_HOUR)
		return psprintf(ngettext("%d hour", "%d hours", (unsigned long) (secs / SECS_PER_HOUR)),
						(int) (secs / SECS_PER_HOUR));
	if (secs >= SECS_PER_MINUTE)
		return psprintf(ngettext("%d minute", "%d minutes", (unsigned long) (secs / SECS_PER_MINUTE)),
						(int) (secs / SECS_PER_MINUTE));
	return psprintf(ngettext("%d second", "%d seconds", (unsigned long) secs), (int) secs);
}

/*
 * A blocker the registry says is live but nothing has shown alive for
 * rollguard.stale_after: when it was last seen, and how.
 */
static void
append_stale(StringInfo buf, RgBlocker *b)
{
	TimestampTz last = Max(b->last_deployed, b->last_connected);

	if (b->last_connected == 0)
		appendStringInfo(buf, _(" It has not been seen for %s: its last deploy step was %s ago, and no tagged session of it was seen."),
						 age_words(last), age_words(b->last_deployed));
	else
		appendStringInfo(buf, _(" It has not been seen for %s: its last deploy step was %s ago, its last tagged session %s ago."),
						 age_words(last), age_words(b->last_deployed), age_words(b->last_connected));
}

/* Emits the refusal (ERROR) or the warning for one blocked change. */
static void
report(int elevel, RgChange *ch, List *blockers, int more_changes)
{
	const RgChangeDesc *desc = rg_change_desc(ch->kind);
	int			n = count_deployments(blockers);
	StringInfoData detail;
	StringInfoData client_detail;
	const char *message;
	const char *message_plural;
	const char *hint;
	ListCell   *lc;
	bool		unrecorded = false;
	const char *stale_prev = "";
	List	   *stale_calls = NIL;
	StringInfoData hints;

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
		unrecorded |= ((RgBlocker *) lfirst(lc))->unrecorded;
		/* once a deployment (blockers come by deployment) */
		if (((RgBlocker *) lfirst(lc))->stale &&
			strcmp(((RgBlocker *) lfirst(lc))->deployment, stale_prev) != 0)
		{
			RgBlocker  *b = lfirst(lc);

			append_stale(&detail, b);
			if (list_length(stale_calls) < MAX_STALE_NAMED)
				stale_calls = lappend(stale_calls,
									  psprintf("rollguard.remove_deployment(%s)",
											   quote_literal_cstr(b->deployment)));
			stale_prev = b->deployment;
		}
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

	/* the NOT NULL kinds: the reason that applies to the blockers */
	message = desc->message;
	message_plural = desc->message_plural;
	hint = desc->hint;
	if (desc->message_without != NULL)
	{
		int			without = 0;

		foreach(lc, blockers)
			without += ((RgBlocker *) lfirst(lc))->inserts_without ? 1 : 0;
		if (without == list_length(blockers))
		{
			message = desc->message_without;
			message_plural = desc->message_without_plural;
			hint = desc->hint_without;
		}
		else if (without > 0)
		{
			message = desc->message_either;
			message_plural = desc->message_either_plural;
		}
	}

	/*
	 * A release that stops using a column (or relation) and drops it in
	 * the same migration: its new version is registered and does not use
	 * it, and only older versions block -- the deployment migrating among
	 * them.  "Roll out a version that no longer uses it first" would ask for
	 * the very rollout this refusal stops: say what to do instead.
	 */
	if ((desc->rule == RG_RULE_USES_COLUMN || desc->rule == RG_RULE_USES_RELATION) &&
		desc->drops != RG_DROPS_NOTHING)
	{
		const char *newest = NULL;
		char	   *successor;

		foreach(lc, blockers)
		{
			RgBlocker  *b = lfirst(lc);

			if (newest == NULL ||
				rg_version_cmp(b->version, strlen(b->version), newest, strlen(newest)) > 0)
				newest = b->version;
		}
		successor = newest == NULL ? NULL :
			rg_fetch_successor_without(ch->nspname, ch->relname,
									   desc->rule == RG_RULE_USES_COLUMN ? ch->attname : NULL,
									   newest);
		if (successor != NULL)
			hint = psprintf(_("Version \"%s\" and later no longer use it, but the deployments above still run older versions. Ship this migration in a release that comes after every deployment runs \"%s\" or newer (with Django: StopUsingField or StopUsingModel in one release, DropColumn or DropTable in the next; with other tools: \"Removing a column or a table in two releases\" in doc/rules.md); remove a deployment that no longer runs with rollguard.remove_deployment()."),
							successor, successor);
	}

	/*
	 * Refused outside a transaction block (Sequelize's migrations, knex with
	 * transaction: false, Rails' disable_ddl_transaction!, psql -f without
	 * -1): what the migration ran before this statement is committed, and
	 * the tool's bookkeeping does not know it.  Say so, and how to avoid it.
	 */
	if (elevel >= ERROR && ch->statement == NULL && !IsTransactionBlock())
	{
		const char *outside = _("The statement ran outside a transaction block: statements that ran before it in the same migration, if any, are committed and stay applied.");

		appendStringInfo(&detail, "\n%s", outside);
		if (client_detail.len > 0)
			appendStringInfo(&client_detail, "\n%s", outside);
		hint = psprintf("%s %s", _(hint),
						_("Run migrations in one transaction (BEGIN ... COMMIT, psql --single-transaction, or the tool's own setting: see \"Migrations outside a transaction\" in doc/other-tools.md), and check them with rollguard.check() before they run."));
	}

	/* the hint, and what to do about losses and deployments not seen */
	initStringInfo(&hints);
	appendStringInfoString(&hints, _(hint));
	if (unrecorded)
		appendStringInfo(&hints, " %s",
						 _("Uses that could not be recorded count as uses of every column: raise the setting named, let the version's sessions run again, then forget the loss with rollguard.forget_unrecorded() (rollguard.unrecorded lists the losses)."));
	if (stale_calls != NIL)
	{
		appendStringInfo(&hints, " %s ",
						 list_length(stale_calls) == 1
						 ? _("If the deployment not seen no longer exists, remove it:")
						 : _("If deployments not seen no longer exist, remove them:"));
		foreach(lc, stale_calls)
			appendStringInfo(&hints, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
							 (char *) lfirst(lc));
		appendStringInfoString(&hints, _(" (rollguard.deployments shows when each deployment was last seen)."));
	}

	/* arguments in the order change.c gives */
	ereport(elevel,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg_plural(message, message_plural, n,
						   n, rg_relkind_word(ch->relkind), ch->nspname, ch->relname,
						   ch->attname ? ch->attname : ch->target),
			 errdetail_internal("%s", client_detail.len > 0 ? client_detail.data : detail.data),
			 elevel < ERROR
			 ? errdetail_log("%s\nStatement: %s", detail.data, statement_of(ch))
			 : client_detail.len > 0 ? errdetail_log("%s", detail.data) : 0,
			 errhint("%s", hints.data),
			 ch->statement ? errcontext("the transaction leaves the change made by \"%s\"",
										ch->statement) : 0));
}

/*
 * What rollguard.history keeps of a change let through: the change, its
 * blockers (deployment, version, reason, evidence) and, with statement, the
 * statement that made it.
 */
static char *
let_through_json(RgChange *ch, List *blockers, bool statement)
{
	const char *label = rg_change_desc(ch->kind)->label;
	StringInfoData json;
	ListCell   *lc;

	initStringInfo(&json);
	appendStringInfoString(&json, "{\"change\": ");
	escape_json(&json, label);
	if (statement)
	{
		appendStringInfoString(&json, ", \"statement\": ");
		escape_json(&json, statement_of(ch));
	}
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
	return json.data;
}

/*
 * rollguard.enforce = off or warn lets a breaking change through: it is
 * appended to rollguard.history ("let through (enforce = off)"), and, with
 * off (warn has its WARNING), written to the server log with its
 * statement.
 */
static void
let_through(RgChange *ch, List *blockers)
{
	const char *label = rg_change_desc(ch->kind)->label;
	int			n = count_deployments(blockers);
	const char *mode = rg_enforce == RG_ENFORCE_OFF ? "off" : "warn";

	rg_log_history(psprintf("let through (enforce = %s)", mode),
				   ch->nspname, ch->relname, ch->attname, NULL,
				   let_through_json(ch, blockers, true));
	if (rg_enforce != RG_ENFORCE_OFF)
		return;
	rg_stats_outcome(ch->kind, RG_OUTCOME_LET_THROUGH);
	ereport(LOG,
			(errmsg_plural("rollguard.enforce = off lets %s on %s.%s%s%s through, although it breaks %d deployment",
						   "rollguard.enforce = off lets %s on %s.%s%s%s through, although it breaks %d deployments",
						   n, label, ch->nspname, ch->relname,
						   ch->attname ? "." : "", ch->attname ? ch->attname : "", n),
			 errdetail_internal("Statement: %s", statement_of(ch)),
			 errhidestmt(true)));
}

/* An administrator's override lets a breaking change through: say so, and
 * append what it overrode to rollguard.history. */
static void
apply_override(RgChange *ch, List *blockers, const char *reason)
{
	const char *label = rg_change_desc(ch->kind)->label;
	int			n = count_deployments(blockers);

	rg_stats_outcome(ch->kind, RG_OUTCOME_OVERRIDDEN);
	rg_log_history("override applied", ch->nspname, ch->relname, ch->attname, reason,
				   let_through_json(ch, blockers, false));
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

	/* also with enforce = off: what it lets through is recorded */
	if (changes == NIL)
		return NIL;

	/* a session is not evidence against its own statements */
	sessions = rg_live_sessions(false);
	foreach(lc, changes)
	{
		RgChange   *ch = lfirst(lc);
		List	   *blockers;
		const char *override_reason;

		rg_stats_count(RG_STAT_CHANGES);
		blockers = rg_evaluate(ch, sessions);

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
	{
		rg_stats_outcome(((RgChange *) linitial(blocked))->kind, RG_OUTCOME_REFUSED);
		report(ERROR, linitial(blocked), linitial(blockers_of), list_length(blocked) - 1);
	}

	forboth(lc, blocked, bc, blockers_of)
	{
		if (rg_enforce == RG_ENFORCE_WARN)
		{
			rg_stats_outcome(((RgChange *) lfirst(lc))->kind, RG_OUTCOME_WARNED);
			report(WARNING, lfirst(lc), lfirst(bc), 0);
		}
		let_through(lfirst(lc), lfirst(bc));
	}
	return clean;
}
