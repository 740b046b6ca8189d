/*-------------------------------------------------------------------------
 * check.c
 *		rollguard.check(ddl): the dry run.  Parses a migration script, runs
 *		every statement through the same analysis and rules as the guard,
 *		executes nothing, and returns one row per blocker.  The script is
 *		judged as one transaction: an undoable change that a later
 *		statement undoes is no blocker (see net_effect.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "parser/parser.h"
#include "utils/builtins.h"

#include "compat.h"
#include "rollguard.h"

PG_FUNCTION_INFO_V1(rollguard_check);

/* A syntax error points into the script, not into the SELECT calling us. */
static void
script_error_callback(void *arg)
{
	int			pos = geterrposition();

	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery((const char *) arg);
	}
	errcontext("migration script given to rollguard.check()");
}

Datum
rollguard_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *script = text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *stmts;
	RgOverlay  *overlay = rg_overlay_new(false);
	List	   *changes = NIL;
	List	   *judged = NIL;
	ListCell   *lc;
	List	   *sessions = NIL;
	RgLockScript *lock_script = rg_lock_script_new();
	List	   *findings = NIL;
	ErrorContextCallback errcallback;
	int			natts;

	InitMaterializedSRF(fcinfo, 0);
	/* 1.5's definition has no "family" column */
	natts = rsinfo->setDesc->natts;

	if (!rg_extension_active())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"rollguard\" is not installed in this database")));

	errcallback.callback = script_error_callback;
	errcallback.arg = script;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	stmts = raw_parser(script, RAW_PARSE_DEFAULT);
	error_context_stack = errcallback.previous;
	/* as the guard sees them, when another session runs the script */
	sessions = rg_live_sessions(false);

	/* every change of every statement, as the script goes */
	foreach(lc, stmts)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);
		ListCell   *cc;

		findings = list_concat(findings,
							   rg_lock_check_statement(rs->stmt, script, rs->stmt_location,
													   rs->stmt_len, lock_script));
		if (!rg_is_candidate(rs->stmt))
			continue;
		foreach(cc, rg_analyze_statement(rs->stmt, overlay))
		{
			RgChange   *ch = lfirst(cc);

			ch->statement = rg_statement_text(script, rs->stmt_location, rs->stmt_len);
			changes = lappend(changes, ch);
		}
	}

	/*
	 * The script is one transaction: an undoable change counts only if the
	 * script leaves it in effect, and once (the first statement that made
	 * it is named).
	 */
	foreach(lc, changes)
	{
		RgChange   *ch = lfirst(lc);
		ListCell   *bc;

		if (rg_change_desc(ch->kind)->undoable)
		{
			if (rg_change_listed(judged, ch) || !rg_overlay_leaves(overlay, ch))
				continue;
			judged = lappend(judged, ch);
		}
		foreach(bc, rg_evaluate(ch, sessions))
		{
			RgBlocker  *b = lfirst(bc);
			Datum		values[8];
			bool		nulls[8] = {0};

			values[0] = CStringGetTextDatum(ch->statement);
			values[1] = CStringGetTextDatum(rg_change_desc(ch->kind)->label);
			values[2] = CStringGetTextDatum(psprintf("%s.%s", ch->nspname, ch->relname));
			if (ch->attname)
				values[3] = CStringGetTextDatum(ch->attname);
			else
				nulls[3] = true;
			values[4] = CStringGetTextDatum(b->deployment);
			values[5] = CStringGetTextDatum(b->version);
			values[6] = CStringGetTextDatum(b->evidence
											? psprintf("%s (%s)", b->reason, b->evidence)
											: b->reason);
			values[7] = CStringGetTextDatum("compatibility");
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}

	/* what would stall deployed code: a row per finding */
	if (natts < 8)
		return (Datum) 0;
	foreach(lc, findings)
	{
		RgLockFinding *f = lfirst(lc);
		Datum		values[8];
		bool		nulls[8] = {0};

		values[0] = CStringGetTextDatum(f->statement);
		values[1] = CStringGetTextDatum(f->check);
		values[2] = CStringGetTextDatum(psprintf("%s.%s", f->nspname, f->relname));
		if (f->attname)
			values[3] = CStringGetTextDatum(f->attname);
		else
			nulls[3] = true;
		nulls[4] = nulls[5] = true;
		values[6] = CStringGetTextDatum(f->message);
		values[7] = CStringGetTextDatum("downtime");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
