/*-------------------------------------------------------------------------
 * net_effect.c
 *		A migration is a transaction: the changes that a later statement of
 *		the same transaction can undo (renames, SET SCHEMA, NOT NULL, DROP
 *		DEFAULT, type and identity changes; see "undoable" in change.c) are
 *		judged on what the transaction leaves, when it commits or is
 *		prepared.
 *
 * While a transaction runs DDL, the guard notes, the first time a statement
 * touches a column or a relation, what it was before (its names, and what
 * the catalog said of the column).  An undoable change is not judged at its
 * statement but kept, with the statement's text; at PRE_COMMIT (or
 * PRE_PREPARE) each kept change is compared with what the catalog says
 * then: a column renamed back, a default set again, a type widened in the
 * end, a NOT NULL the column had before -- nothing to judge.  What is still
 * in effect is judged as one statement would be (rules.c, report.c), named
 * as code knows it: by the names it had before the transaction.
 *
 * Kept changes belong to the subtransaction of their statement: a rolled
 * back savepoint takes its changes with it.  What was noted before stays
 * true (what the savepoint undid is as it was).  A transaction with no
 * kept change does nothing at commit.
 *
 * A statement outside a transaction block (with what it runs: DO,
 * functions) is its own transaction: it is judged at the statement, before
 * it runs.
 *
 * Inside a transaction block, the changes judged at their statement (the
 * others) are kept too: the judgment there let the registry lock go, so
 * that an open migration does not hold deploy steps up (extension.c).
 * Those that broke nothing then are judged again at PRE_COMMIT or
 * PRE_PREPARE, with the undoable ones, under the lock: a deploy step that
 * committed in between is seen.  What they remove is recorded then.  A
 * COMMIT keeps the lock until the transaction has ended; a PREPARE holds
 * it (at session level) until the transaction is prepared and then lets
 * it go, the prepared transaction holding a lock on every relation it
 * changes, which deploy steps look for (rollguard._prepare_live()).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_constraint.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "rollguard.h"

/* A relation (attnum 0) or a column, by identity. */
typedef struct OriginalKey
{
	Oid			relid;
	AttrNumber	attnum;
} OriginalKey;

/* What it was before the transaction touched it. */
typedef struct Original
{
	OriginalKey key;
	char	   *nspname;
	char	   *relname;
	char	   *attname;		/* columns only */
	RgColumnFacts facts;		/* columns only */
} Original;

/* An undoable change, to be judged at commit; or one judged already. */
typedef struct Kept
{
	RgChange   *change;
	SubTransactionId subid;
	bool		recheck;		/* judged already: broke nothing then */
} Kept;

static bool deferring = false;	/* the statement being analyzed defers */
static LocalTransactionId block_lxid = InvalidLocalTransactionId;	/* a
																	 * transaction
																	 * block */
static HTAB *originals = NULL;	/* in TopTransactionContext */
static List *kept = NIL;		/* in TopTransactionContext */
static List *judged = NIL;		/* in TopTransactionContext: judged at
								 * their statement */
static bool callbacks_registered = false;

static void
forget_transaction(void)
{
	/* their memory goes with the transaction */
	originals = NULL;
	kept = NIL;
	judged = NIL;
	deferring = false;
}

static void net_xact_callback(XactEvent event, void *arg);
static void net_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);

/*
 * What this file keeps lives in TopTransactionContext: from the first time
 * it keeps anything in a backend, the end of every transaction forgets it.
 */
static void
keep_until_transaction_end(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(net_xact_callback, NULL);
	RegisterSubXactCallback(net_subxact_callback, NULL);
	callbacks_registered = true;
}

static Original *
original(Oid relid, AttrNumber attnum, bool *found)
{
	OriginalKey key = {relid, attnum};

	if (originals == NULL)
	{
		HASHCTL		ctl;

		if (found == NULL)
			return NULL;
		keep_until_transaction_end();
		ctl.keysize = sizeof(OriginalKey);
		ctl.entrysize = sizeof(Original);
		ctl.hcxt = TopTransactionContext;
		originals = hash_create("rollguard originals", 64, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return hash_search(originals, &key, found ? HASH_ENTER : HASH_FIND, found);
}

/*
 * A top-level statement has run: is its transaction a transaction block
 * (BEGIN, or several statements sent as one string)?  What runs inside
 * a function cannot tell (a PL/pgSQL exception block is a subtransaction,
 * in any transaction): it asks what the top level saw.
 */
void
rg_net_note_toplevel(void)
{
	if (IsTransactionBlock())
		block_lxid = RG_MY_LXID();
}

/*
 * A statement is about to be analyzed: its undoable changes wait for the
 * commit if its transaction is more than this one statement.
 */
void
rg_net_begin_statement(bool toplevel)
{
	deferring = IsTransactionBlock() &&
		(toplevel || block_lxid == RG_MY_LXID());
}

/*
 * A statement of this transaction is about to touch the relation and, with
 * attname, its column: note what they are before it, the first time.
 */
void
rg_net_touch(Oid relid, const char *attname)
{
	MemoryContext old;
	Original   *o;
	bool		found;
	AttrNumber	attnum;

	if (!deferring)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	o = original(relid, 0, &found);
	if (!found)
	{
		o->nspname = get_namespace_name(get_rel_namespace(relid));
		o->relname = get_rel_name(relid);
	}
	/* a column this transaction adds has no "before": nothing to note */
	if (attname != NULL && (attnum = get_attnum(relid, attname)) > 0)
	{
		Original   *rel = o;

		o = original(relid, attnum, &found);
		if (!found)
		{
			o->nspname = rel->nspname;
			o->relname = rel->relname;
			o->attname = pstrdup(attname);
			o->facts = rg_column_facts(relid, attnum);
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * Names the change as code knows it: by the names its relation and column
 * had before this transaction renamed them.
 */
void
rg_net_original_names(RgChange *ch)
{
	Original   *o;

	if (originals == NULL || !OidIsValid(ch->relid))
		return;
	if ((o = original(ch->relid, 0, NULL)) != NULL)
	{
		ch->nspname = o->nspname;
		ch->relname = o->relname;
	}
	if (ch->attnum > 0 && (o = original(ch->relid, ch->attnum, NULL)) != NULL)
		ch->attname = o->attname;
}

static List *
forget_subtransaction(List *list, SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid)
{
	ListCell   *lc;

	foreach(lc, list)
	{
		Kept	   *k = lfirst(lc);

		if (k->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			list = foreach_delete_current(list, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			k->subid = parentSubid;
	}
	return list;
}

static void
net_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	kept = forget_subtransaction(kept, event, mySubid, parentSubid);
	judged = forget_subtransaction(judged, event, mySubid, parentSubid);
}

/*
 * Is a change of a column still in effect, comparing what the column was
 * before (before.exists false: a column the transaction or script added)
 * with what it is now?  constraint_stays: for CHECK (c IS NOT NULL), the
 * constraint is still there.  Sets has_default for the NOT NULL rules.
 */
bool
rg_net_column_change_stays(RgChange *ch, const RgColumnFacts *before,
						   const RgColumnFacts *now, bool constraint_stays)
{
	if (!now->exists)
		return false;			/* dropped since: judged at its statement */
	switch (ch->kind)
	{
		case RG_ALTER_TYPE:
			return before->exists && !rg_column_type_widens(before, now);
		case RG_SET_NOT_NULL:
			ch->has_default = RG_FACTS_HAVE_DEFAULT(*now);
			return now->notnull && !(before->exists && RG_FACTS_REJECT_NULL(*before));
		case RG_ATTACH_NOT_NULL:
			ch->has_default = RG_FACTS_HAVE_DEFAULT(*now);
			return RG_FACTS_REJECT_NULL(*now) &&
				!(before->exists && RG_FACTS_REJECT_NULL(*before));
		case RG_CHECK_NOT_NULL:
			ch->has_default = RG_FACTS_HAVE_DEFAULT(*now);
			return constraint_stays && !(before->exists && RG_FACTS_REJECT_NULL(*before));
		case RG_DROP_DEFAULT:
		case RG_DROP_IDENTITY:
			/* left unable to take NULL without a default that it had (or,
			 * added in this transaction, never had) */
			return RG_FACTS_REJECT_NULL(*now) && !RG_FACTS_HAVE_DEFAULT(*now) &&
				(!before->exists ||
				 (RG_FACTS_REJECT_NULL(*before) && RG_FACTS_HAVE_DEFAULT(*before)));
		case RG_GENERATED_ALWAYS:
			return now->identity == ATTRIBUTE_IDENTITY_ALWAYS &&
				!(before->exists && before->identity == ATTRIBUTE_IDENTITY_ALWAYS);
		default:
			return true;
	}
}

/*
 * Is the change still in effect when the transaction ends, compared with
 * what its column or relation was before the transaction touched it?  The
 * change's names are the original ones; its ids are still valid, unless
 * the transaction dropped what they name (that was judged at its own
 * statement).
 */
static bool
still_in_effect(RgChange *ch)
{
	Original   *rel = original(ch->relid, 0, NULL);
	Original   *col = NULL;
	RgColumnFacts before = {0};
	RgColumnFacts now;
	AttrNumber	attnum = ch->attnum;

	if (get_rel_relkind(ch->relid) == '\0')
		return false;			/* dropped since */

	if (rg_change_desc(ch->kind)->rule == RG_RULE_USES_RELATION)
		return rel == NULL ||
			strcmp(get_rel_name(ch->relid), rel->relname) != 0 ||
			strcmp(get_namespace_name(get_rel_namespace(ch->relid)), rel->nspname) != 0;

	/*
	 * A column the same statement added had no id yet: find it by the name
	 * the statement gave it (it has no original name).
	 */
	if (attnum <= 0)
		attnum = get_attnum(ch->relid, ch->attname);
	if (attnum <= 0)
		return false;			/* dropped since */
	if ((col = original(ch->relid, attnum, NULL)) != NULL)
		before = col->facts;
	now = rg_column_facts(ch->relid, attnum);

	if (ch->kind == RG_RENAME_COLUMN)
		return now.exists &&
			(col == NULL || strcmp(get_attname(ch->relid, attnum, false), col->attname) != 0);
	/* an unnamed constraint cannot be found again: it stays */
	return rg_net_column_change_stays(ch, &before, &now,
									  ch->target == NULL ||
									  OidIsValid(get_relation_constraint_oid(ch->relid, ch->target, true)));
}

/*
 * Is a change judged at its statement still made when the transaction
 * ends?  A drop stays (only a rolled back savepoint undoes it, and takes
 * the change with it); the rest as still_in_effect() says.
 */
static bool
judged_change_stays(RgChange *ch)
{
	const RgChangeDesc *desc = rg_change_desc(ch->kind);

	if (desc->drops != RG_DROPS_NOTHING && ch->kind != RG_DROP_DEFAULT)
		return true;
	if (!OidIsValid(ch->relid))
		return false;
	return still_in_effect(ch);
}

/*
 * The transaction is about to commit or be prepared: judge what it leaves,
 * and record what it removes.
 */
static void
judge_transaction(bool prepare)
{
	List	   *changes = NIL;	/* to judge now */
	List	   *removals = NIL; /* to record */
	List	   *all = NIL;		/* every change the transaction made */
	ListCell   *lc;

	foreach(lc, kept)
	{
		Kept	   *k = lfirst(lc);
		RgChange   *ch = k->change;

		all = lappend(all, ch);
		if (rg_change_listed(changes, ch))
			continue;
		if (still_in_effect(ch))
			changes = lappend(changes, ch);
	}
	removals = list_copy(changes);
	foreach(lc, judged)
	{
		Kept	   *k = lfirst(lc);
		RgChange   *ch = k->change;

		all = lappend(all, ch);
		if (rg_change_listed(removals, ch) || !judged_change_stays(ch))
			continue;
		removals = lappend(removals, ch);
		if (k->recheck)
			changes = lappend(changes, ch);
	}
	kept = NIL;
	judged = NIL;
	if (all == NIL)
		return;
	/* SPI, for the registry and the history, wants an active snapshot */
	PushActiveSnapshot(GetTransactionSnapshot());
	/*
	 * The transaction may have dropped the extension.  What stays and is
	 * let through is recorded for deploy's forward check.
	 */
	if (rg_extension_active())
	{
		if (prepare)
		{
			/*
			 * The registry lock, at session level until the transaction is
			 * prepared; and a lock on every relation the transaction
			 * changes, which the prepared transaction keeps: deploy steps
			 * of versions that use one of them see it (they cannot wait
			 * for what the prepared transaction does to them).  The
			 * statements hold a stronger one already, except ALTER
			 * SCHEMA ... RENAME.
			 */
			rg_lock_registry_for_prepare();
			foreach(lc, all)
			{
				RgChange   *ch = lfirst(lc);

				if (OidIsValid(ch->relid))
					LockRelationOid(ch->relid, ShareUpdateExclusiveLock);
			}
		}
		if (changes != NIL)
		{
			rg_lock_registry();
			rg_enforce_changes(changes);
		}
		rg_record_removals(removals);
		if (prepare)
			rg_registry_prepare_judged();
	}
	PopActiveSnapshot();
}

static void
net_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (kept != NIL || judged != NIL)
				judge_transaction(false);
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (kept != NIL || judged != NIL)
				judge_transaction(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			/* the prepared transaction holds what it needs */
			rg_unlock_registry_after_prepare();
			forget_transaction();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget_transaction();
			break;
		default:
			break;
	}
}

/*
 * Are the changes judged at a statement kept for the commit, and the
 * registry lock let go after the judgment?  Inside a transaction block
 * (also an implicit one: several statements sent as one string).
 */
bool
rg_net_keeps_judged(void)
{
	return IsTransactionBlock();
}

/* A copy of the change in TopTransactionContext, kept until the commit. */
static Kept *
keep_change(RgChange *ch, char *statement)
{
	Kept	   *k = palloc(sizeof(Kept));

	k->change = palloc(sizeof(RgChange));
	*k->change = *ch;
	k->change->nspname = pstrdup(ch->nspname);
	k->change->relname = pstrdup(ch->relname);
	k->change->attname = ch->attname ? pstrdup(ch->attname) : NULL;
	k->change->target = ch->target ? pstrdup(ch->target) : NULL;
	k->change->statement = statement;
	k->subid = GetCurrentSubTransactionId();
	k->recheck = false;
	return k;
}

/*
 * Keeps the changes a statement of a transaction block made and that were
 * judged at it (or not, with rollguard.enforce = off) for the commit:
 * those that broke nothing then (clean) are judged again, under the
 * registry lock; what all of them remove is recorded then.
 */
void
rg_net_keep_judged(List *changes, List *clean, const char *query,
				   int location, int len)
{
	MemoryContext old;
	ListCell   *lc;
	char	   *statement;

	if (changes == NIL)
		return;
	keep_until_transaction_end();
	old = MemoryContextSwitchTo(TopTransactionContext);
	statement = rg_statement_text(query, location, len);
	foreach(lc, changes)
	{
		RgChange   *ch = lfirst(lc);
		Kept	   *k = keep_change(ch, statement);

		k->recheck = list_member_ptr(clean, ch);
		judged = lappend(judged, k);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Keeps the statement's undoable changes for the commit, when it defers;
 * returns the others, to be judged now.  The statement's text (query,
 * sliced at location and len as in PlannedStmt) is copied only if a change
 * is kept.
 */
List *
rg_net_defer(List *changes, const char *query, int location, int len)
{
	List	   *now = NIL;
	ListCell   *lc;
	char	   *statement = NULL;

	if (!deferring)
		return changes;
	foreach(lc, changes)
	{
		RgChange   *ch = lfirst(lc);
		MemoryContext old;
		Kept	   *k;

		if (!rg_change_desc(ch->kind)->undoable)
		{
			now = lappend(now, ch);
			continue;
		}
		keep_until_transaction_end();
		old = MemoryContextSwitchTo(TopTransactionContext);
		if (statement == NULL)
			statement = rg_statement_text(query, location, len);
		k = keep_change(ch, statement);
		kept = lappend(kept, k);
		MemoryContextSwitchTo(old);
	}
	return now;
}
