/*-------------------------------------------------------------------------
 * guard.c
 *		The hooks: ProcessUtility_hook checks the changes a statement names
 *		before it runs; object_access_hook is the backstop for columns and
 *		relations that disappear by cascade, checked when the statement that
 *		dropped them ends, before its transaction can commit.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"

#include "compat.h"
#include "rollguard.h"

/* One per utility statement being executed (they nest: DO, functions). */
typedef struct GuardFrame
{
	int			active;			/* extension in this database: 1, 0, or -1
								 * (not asked yet) */
	List	   *covered;		/* changes the statement names */
	List	   *judged;			/* ... judged before it ran (the others wait
								 * for the commit: net_effect.c) */
	List	   *pending;		/* cascade drops seen while it ran */
	MemoryContext cxt;
} GuardFrame;

static GuardFrame *current_frame = NULL;

bool		rg_explain_only = false;

static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

/* Was this drop checked already, by the statement that names it? */
static bool
is_covered(GuardFrame *frame, Oid relid, int subId)
{
	ListCell   *lc;

	foreach(lc, frame->covered)
	{
		RgChange   *ch = lfirst(lc);

		if (ch->relid != relid)
			continue;
		switch (rg_change_desc(ch->kind)->drops)
		{
			case RG_DROPS_RELATION:
				return true;
			case RG_DROPS_COLUMN:
				if (ch->attnum == subId)
					return true;
				break;
			case RG_DROPS_NOTHING:
				break;
		}
	}
	return false;
}

static void
rg_object_access(ObjectAccessType access, Oid classId, Oid objectId,
				 int subId, void *arg)
{
	MemoryContext old;
	char	   *attname = NULL;
	RgChangeKind kind;

	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access != OAT_DROP || current_frame == NULL)
		return;
	if (classId != RelationRelationId && classId != AttrDefaultRelationId)
		return;
	/* table rewrites, SET DEFAULT replacing a default, temp-table cleanup */
	if (((ObjectAccessDrop *) arg)->dropflags & PERFORM_DELETION_INTERNAL)
		return;
	/* nothing to do in a database without the extension: ask once */
	if (current_frame->active < 0)
		current_frame->active = rg_extension_active() ? 1 : 0;
	if (!current_frame->active)
		return;

	if (classId == AttrDefaultRelationId)
	{
		/* a column default, removed by cascade (DROP SEQUENCE ... CASCADE) */
		ObjectAddress col = GetAttrDefaultColumnAddress(objectId);

		if (!OidIsValid(col.objectId))
			return;
		objectId = col.objectId;
		subId = col.objectSubId;
		kind = RG_DROP_DEFAULT;
	}
	else
		kind = subId > 0 ? RG_CASCADE_DROP_COLUMN : RG_CASCADE_DROP_RELATION;
	if (subId < 0)
		return;
	if (is_covered(current_frame, objectId, subId))
		return;
	if (!rg_relation_is_guarded(objectId, NULL))
		return;
	if (subId > 0 && (attname = get_attname(objectId, subId, true)) == NULL)
		return;

	/* names only: the catalog rows are gone by the time we check */
	old = MemoryContextSwitchTo(current_frame->cxt);
	current_frame->pending =
		lappend(current_frame->pending, rg_make_change(kind, objectId, attname));
	MemoryContextSwitchTo(old);
}

/* EXPLAIN without ANALYZE: plans, and executes nothing. */
static bool
is_explain_only(Node *parsetree)
{
	ListCell   *lc;

	if (!IsA(parsetree, ExplainStmt))
		return false;
	foreach(lc, ((ExplainStmt *) parsetree)->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "analyze") == 0)
			return !defGetBoolean(opt);
	}
	return true;
}

/*
 * The statement itself, with frame as the current frame while it runs (and
 * rg_explain_only set while an EXPLAIN without ANALYZE does).
 */
static void
run_in_frame(GuardFrame *frame, PROCESS_UTILITY_PARAMS)
{
	GuardFrame *saved_frame = current_frame;
	bool		saved_explain_only = rg_explain_only;

	frame->cxt = CurrentMemoryContext;
	current_frame = frame;
	if (is_explain_only(pstmt->utilityStmt))
		rg_explain_only = true;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(PROCESS_UTILITY_ARGS);
		else
			standard_ProcessUtility(PROCESS_UTILITY_ARGS);
	}
	PG_FINALLY();
	{
		current_frame = saved_frame;
		rg_explain_only = saved_explain_only;
	}
	PG_END_TRY();
}

/*
 * Judges changes now, under the registry lock.  Inside a transaction block
 * the lock is let go after the judgment (the changes are judged again at
 * the commit: net_effect.c), so that an open migration does not hold deploy
 * steps up; a statement that is its own transaction keeps it until it
 * ends.  Returns the changes that broke nothing.
 */
static List *
judge_now(List *changes)
{
	List	   *clean;

	/* also with enforce = off: what it lets through is recorded */
	if (changes == NIL)
		return NIL;
	rg_lock_registry();
	clean = rg_enforce_changes(changes);
	if (rg_net_keeps_judged())
		rg_unlock_registry();
	return clean;
}

/*
 * After the statement: changes judged now are kept for the commit in a
 * transaction block (net_effect.c), or their removals recorded.
 */
static void
settle_judged(List *judged, List *clean, bool keep, const char *queryString,
			  int location, int len)
{
	if (keep)
		rg_net_keep_judged(judged, clean, queryString, location, len);
	else
		rg_record_removals(judged);
}

static void
rg_ProcessUtility(PROCESS_UTILITY_PARAMS)
{
	Node	   *parsetree = pstmt->utilityStmt;
	GuardFrame	frame = {.active = -1};
	List	   *clean = NIL;
	bool		keep;

	/* the downtime guard (lock_checks.c): first, before anything is locked */
	rg_lock_checks_statement(parsetree, queryString, pstmt->stmt_location,
							 pstmt->stmt_len);

	/*
	 * A statement that names a breaking change is judged before it runs.
	 * With rollguard.enforce = off nothing is refused, but what the
	 * statement removes is still recorded for the forward check at deploy.
	 * In a read-only transaction the statement fails on its own.
	 */
	if (rg_is_candidate(parsetree) && !XactReadOnly)
	{
		frame.active = rg_extension_active() ? 1 : 0;
		if (frame.active)
		{
			/*
			 * Undoable changes are judged on what the transaction leaves,
			 * unless the statement (with what it runs: DO, functions) is
			 * the whole transaction.
			 */
			rg_net_begin_statement(context == PROCESS_UTILITY_TOPLEVEL);
			frame.covered = rg_analyze_statement(parsetree, rg_overlay_new(true));
			frame.judged = rg_net_defer(frame.covered, queryString,
										pstmt->stmt_location, pstmt->stmt_len);
			clean = judge_now(frame.judged);
		}
	}

	run_in_frame(&frame, PROCESS_UTILITY_ARGS);
	if (context == PROCESS_UTILITY_TOPLEVEL)
		rg_net_note_toplevel();

	/* SET application_name may have tagged or untagged this session */
	rg_sessions_note_appname();

	/*
	 * Anything left to do: changes judged now (kept for the commit in a
	 * transaction block, removals to record otherwise; a change that waits
	 * for the commit is recorded then, if it stays), or what the statement
	 * dropped without naming it?  (Then check again that the extension is
	 * there: the statement may have dropped it.)
	 */
	keep = rg_net_keeps_judged();
	{
		bool		removes = frame.pending != NIL;
		ListCell   *lc;

		foreach(lc, frame.judged)
		{
			const RgChangeDesc *desc = rg_change_desc(((RgChange *) lfirst(lc))->kind);

			/* (rg_record_removals() records NOT NULL too) */
			removes |= keep || desc->removes || desc->rule == RG_RULE_MAY_WRITE_NULL;
		}
		if (!removes || !rg_extension_active())
			return;
	}

	if (frame.judged != NIL)
		settle_judged(frame.judged, clean, keep, queryString,
					  pstmt->stmt_location, pstmt->stmt_len);

	/* the backstop: what the statement dropped without naming it */
	if (frame.pending != NIL)
	{
		List	   *changes = NIL;
		ListCell   *lc;

		foreach(lc, frame.pending)
		{
			RgChange   *ch = lfirst(lc);

			/* a lost default matters only if the column is left without one */
			if (ch->kind != RG_DROP_DEFAULT || rg_default_is_gone(ch))
				changes = lappend(changes, ch);
		}
		clean = judge_now(changes);
		settle_judged(changes, clean, keep, queryString,
					  pstmt->stmt_location, pstmt->stmt_len);
	}
}

void
rg_install_hooks(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = rg_ProcessUtility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = rg_object_access;
}
