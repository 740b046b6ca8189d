/*-------------------------------------------------------------------------
 * rules.c
 *		The verdict: which live versions a change breaks, and why.
 *
 * Each live (deployment, version) is judged on its effective contract for
 * the changed relation, by the change's rule class (rollguard.h):
 *
 *	uses column			it uses the column (drop, rename, retype a column)
 *	uses relation		it uses any column of it (drop, rename, move a
 *						relation, rename its schema)
 *	may write NULL		it may write NULL to the column, or it inserts
 *						without writing it and the column has no default
 *						(SET NOT NULL, CHECK (c IS NOT NULL))
 *	inserts without		it inserts into the relation without writing the
 *						column (DROP DEFAULT / DROP IDENTITY of a NOT NULL
 *						column, ADD COLUMN NOT NULL without a default)
 *	writes column		it writes the column on INSERT (GENERATED ALWAYS)
 *
 * ("inserts into t" = its contract lists a column of t that it writes.)
 * What is done with the verdict (refusal, warning, override) is report.c's.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_rewrite.h"
#include "lib/stringinfo.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "rollguard.h"

/* " (observed, last at 2026-11-21 15:04:05+00)" */
static char *
observed_note(const char *what, TimestampTz at)
{
	return psprintf(" (%s, last at %s)", what, timestamptz_to_str(at));
}

/*
 * Judge one live (deployment, version) on its rows for the relation
 * (rows[first .. last-1]): its contract's, and the uses its tagged
 * sessions were seen making.  A use seen counts as a use; a write of a
 * column seen counts as one that may be NULL (the values are unknown),
 * unless the contract lists the column; an insert into the relation seen
 * (a write of the relation itself, attname "") counts as inserting.  What
 * was seen only ever adds reasons: it never cancels one the contract gives.
 * Uses that could not be recorded (the table of observed uses was full)
 * may be anything: they break every change to the relation (*unrecorded).
 * Returns the reason it breaks, or NULL.
 */
static char *
judge(RgChange *ch, List *rows, int first, int last, bool *inserts_without,
	  bool *unrecorded)
{
	RgUsage    *col = NULL;		/* the column's contract row */
	RgUsage    *seen = NULL;	/* the column's observed use */
	bool		inserts = false;
	TimestampTz inserts_seen = 0;	/* inserts only by observation: when */
	TimestampTz seen_at = 0;
	bool		contract_rows = false;
	StringInfoData buf;
	const char *qualified = psprintf("%s.%s", ch->nspname, ch->relname);

	*unrecorded = false;
	for (int i = first; i < last; i++)
	{
		RgUsage    *u = list_nth(rows, i);

		if (u->unrecorded)
		{
			*unrecorded = true;
			return psprintf("may use %s%s%s in ways that were not recorded (\"%s\" was reached, last at %s)",
							qualified, ch->attname && ch->attname[0] ? "." : "", ch->attname ? ch->attname : "",
							u->by_version_limit ? "rollguard.max_observed_per_version"
							: "rollguard.max_observed",
							timestamptz_to_str(u->observed_at));
		}
	}
	for (int i = first; i < last; i++)
	{
		RgUsage    *u = list_nth(rows, i);
		bool		is_col = !ch->hidden && ch->attname && strcmp(u->attname, ch->attname) == 0;

		if (u->observed)
		{
			if (u->observed_at > seen_at)
				seen_at = u->observed_at;
			/* a write of the relation itself: it inserts rows */
			if (u->attname[0] == '\0' && u->writes && u->observed_at > inserts_seen)
				inserts_seen = u->observed_at;
			if (is_col)
				seen = u;
		}
		else
		{
			contract_rows = true;
			if (u->writes)
				inserts = true;
			if (is_col)
				col = u;
		}
	}
	if (inserts)
		inserts_seen = 0;		/* the contract says so already */
	else if (inserts_seen != 0)
		inserts = true;

	/* a view that does not show the column: its inserts leave it out */
	if (ch->hidden)
	{
		if (!inserts || (rg_change_desc(ch->kind)->rule == RG_RULE_MAY_WRITE_NULL &&
						 ch->has_default))
			return NULL;
		*inserts_without = true;
		return psprintf("inserts into %s, which does not show %s%s", qualified, ch->target,
						inserts_seen ? observed_note("observed inserting rows", inserts_seen) : "");
	}

	switch (rg_change_desc(ch->kind)->rule)
	{
		case RG_RULE_USES_COLUMN:
			if (col)
				return psprintf("uses %s.%s", qualified, ch->attname);
			if (seen)
				return psprintf("uses %s.%s%s", qualified, ch->attname,
								observed_note("observed", seen->observed_at));
			return NULL;

		case RG_RULE_USES_RELATION:
			{
				List	   *names = NIL;

				/* rows come ordered by column: a column seen and listed
				 * in the contract is adjacent to itself */
				for (int i = first; i < last; i++)
				{
					RgUsage    *u = list_nth(rows, i);

					if (u->attname[0] != '\0' &&
						(names == NIL || strcmp(llast(names), u->attname) != 0))
						names = lappend(names, u->attname);
				}
				initStringInfo(&buf);
				if (names == NIL)
					return psprintf("uses %s%s", qualified,
									observed_note("observed", seen_at));
				appendStringInfo(&buf, "uses %s (", qualified);
				for (int i = 0; i < list_length(names) && i < 5; i++)
					appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "",
									 (char *) list_nth(names, i));
				if (list_length(names) > 5)
					appendStringInfo(&buf, " and %d more", list_length(names) - 5);
				if (!contract_rows)
					appendStringInfo(&buf, "; observed, last at %s", timestamptz_to_str(seen_at));
				appendStringInfoChar(&buf, ')');
				return buf.data;
			}

		case RG_RULE_MAY_WRITE_NULL:
			if (col && col->nullable)
				return psprintf("may write NULL to %s.%s", qualified, ch->attname);
			if (!col && seen && seen->writes)
				return psprintf("may write NULL to %s.%s%s", qualified, ch->attname,
								observed_note("observed writing it", seen->observed_at));
			*inserts_without = true;
			if (inserts && !(col && col->writes) && !ch->has_default)
				return psprintf("inserts into %s without writing %s, which has no default%s",
								qualified, ch->attname,
								inserts_seen ? observed_note("observed inserting rows", inserts_seen) : "");
			return NULL;

		case RG_RULE_INSERTS_WITHOUT:
			if (inserts && !(col && col->writes))
				return psprintf("inserts into %s without writing %s%s", qualified, ch->attname,
								inserts_seen ? observed_note("observed inserting rows", inserts_seen) : "");
			return NULL;

		case RG_RULE_INSERTS_INTO:
			if (inserts)
				return psprintf("inserts into %s%s", qualified,
								inserts_seen ? observed_note("observed inserting rows", inserts_seen) : "");
			return NULL;

		case RG_RULE_WRITES_COLUMN:
			if (col && col->writes)
				return psprintf("writes %s.%s on INSERT", qualified, ch->attname);
			if (seen && seen->writes)
				return psprintf("writes %s.%s%s", qualified, ch->attname,
								observed_note("observed", seen->observed_at));
			return NULL;
	}
	return NULL;
}

/*
 * Judge a version that only a connected session says is live, and that has
 * no contract: its code is unknown, so it counts as using every column of
 * every relation in every way a rule asks about.  Every breaking change
 * breaks it.
 */
static char *
judge_unknown(RgChange *ch)
{
	const char *qualified = psprintf("%s.%s", ch->nspname, ch->relname);

	switch (rg_change_desc(ch->kind)->rule)
	{
		case RG_RULE_USES_COLUMN:
			return psprintf("uses %s.%s", qualified, ch->attname);
		case RG_RULE_USES_RELATION:
			return psprintf("uses %s", qualified);
		case RG_RULE_MAY_WRITE_NULL:
			return psprintf("may write NULL to %s.%s", qualified, ch->attname);
		case RG_RULE_INSERTS_WITHOUT:
			return psprintf("may insert into %s without writing %s", qualified, ch->attname);
		case RG_RULE_WRITES_COLUMN:
			return psprintf("may write %s.%s on INSERT", qualified, ch->attname);
		case RG_RULE_INSERTS_INTO:
			return psprintf("may insert into %s", qualified);
	}
	pg_unreachable();
}

/*
 * What shows that a version is live when only tagged sessions say so:
 * "connected now, pid 1234" (the lowest pid, and how many more sessions).
 */
static char *
session_evidence(List *sessions, const char *deployment, const char *version,
				 bool unknown)
{
	List	   *pids = NIL;
	ListCell   *lc;
	int			lowest = 0;

	foreach(lc, sessions)
	{
		RgSession  *s = lfirst(lc);

		if (strcmp(s->deployment, deployment) != 0 || strcmp(s->version, version) != 0)
			continue;
		/* a session tagged both ways counts once */
		pids = list_append_unique_int(pids, s->pid);
		if (lowest == 0 || s->pid < lowest)
			lowest = s->pid;
	}
	return psprintf("connected now, pid %d%s%s", lowest,
					list_length(pids) > 1
					? psprintf(ngettext(" and %d more session", " and %d more sessions",
										list_length(pids) - 1),
							   list_length(pids) - 1)
					: "",
					unknown ? "; not registered, so it counts as using every column" : "");
}

/*
 * Could the change break a version that the registry says is live?  The
 * counters answer exactly what judge() would find over all of them.
 */
static bool
counters_may_break(RgChange *ch, RgLiveCounts *c)
{
	switch (rg_change_desc(ch->kind)->rule)
	{
		case RG_RULE_USES_COLUMN:
			return c->column_users > 0;
		case RG_RULE_USES_RELATION:
			return c->relation_users > 0;
		case RG_RULE_MAY_WRITE_NULL:
			/* may write NULL, or inserts without writing it (no default) */
			return c->column_nullable > 0 ||
				(!ch->has_default && c->relation_inserters > c->column_writers);
		case RG_RULE_INSERTS_WITHOUT:
			/* every version writing the column inserts into the relation */
			return c->relation_inserters > c->column_writers;
		case RG_RULE_WRITES_COLUMN:
			return c->column_writers > 0;
		case RG_RULE_INSERTS_INTO:
			return c->relation_inserters > 0;
	}
	return true;
}

static bool
string_member(List *strings, const char *s)
{
	ListCell   *lc;

	foreach(lc, strings)
		if (strcmp(lfirst(lc), s) == 0)
			return true;
	return false;
}

/* (deployment, version) pairs in the registry query's order: deployment,
 * then version, each in version order. */
static int
pair_cmp(const char *dep1, const char *ver1, const char *dep2, const char *ver2)
{
	int			r;

	r = rg_version_cmp(dep1, strlen(dep1), dep2, strlen(dep2));
	if (r == 0)
		r = strcmp(dep1, dep2);
	if (r == 0)
		r = rg_version_cmp(ver1, strlen(ver1), ver2, strlen(ver2));
	if (r == 0)
		r = strcmp(ver1, ver2);
	return r;
}

/* Rows in the order the registry query gives them: by deployment, then
 * version (in version order), a version without contract first. */
static int
usage_cmp(const ListCell *a, const ListCell *b)
{
	RgUsage    *x = lfirst(a);
	RgUsage    *y = lfirst(b);
	int			r;

	r = pair_cmp(x->deployment, x->version, y->deployment, y->version);
	if (r == 0)
		r = (x->attname != NULL) - (y->attname != NULL);
	if (r == 0 && x->attname != NULL)
		r = strcmp(x->attname, y->attname);
	return r;
}

/* The deployment's entry in a list of RgLiveness, or NULL. */
static RgLiveness *
find_liveness(List *liveness, const char *deployment)
{
	ListCell   *lc;

	foreach(lc, liveness)
	{
		RgLiveness *l = lfirst(lc);

		if (strcmp(l->deployment, deployment) == 0)
			return l;
	}
	return NULL;
}

/*
 * Adds, for every live (deployment, version) of the observed uses'
 * versions, a row per use, and orders the whole as the registry query does.
 * Live: by the registry, or by a tagged session connected now.
 */
static List *
add_observed_rows(List *rows, List *observed, List *versions, List *sessions)
{
	List	   *pairs = rg_fetch_live_pairs(versions);
	ListCell   *lc;
	ListCell   *oc;

	foreach(lc, sessions)
	{
		RgSession  *s = lfirst(lc);
		bool		listed = false;
		ListCell   *pc;

		if (!string_member(versions, s->version))
			continue;
		foreach(pc, pairs)
		{
			RgUsage    *p = lfirst(pc);

			if (strcmp(p->deployment, s->deployment) == 0 &&
				strcmp(p->version, s->version) == 0)
				listed = true;
		}
		if (!listed)
		{
			RgUsage    *p = palloc0(sizeof(RgUsage));

			p->deployment = s->deployment;
			p->version = s->version;
			p->connected = true;
			pairs = lappend(pairs, p);
		}
	}

	foreach(lc, pairs)
	{
		RgUsage    *p = lfirst(lc);

		foreach(oc, observed)
		{
			RgObserved *o = lfirst(oc);
			RgUsage    *u;

			if (strcmp(o->version, p->version) != 0)
				continue;
			u = palloc0(sizeof(RgUsage));
			*u = *p;
			/* "" for a use of the relation without any of its columns */
			u->attname = o->attname ? o->attname : "";
			u->writes = o->writes;
			u->nullable = o->writes;
			u->observed = true;
			u->observed_at = o->last_seen;
			u->unrecorded = o->unrecorded;
			u->by_version_limit = o->by_version_limit;
			rows = lappend(rows, u);
		}
	}
	list_sort(rows, usage_cmp);
	return rows;
}

/* Blockers in the order the registry query gives them (report.c counts
 * deployments on it). */
static int
blocker_cmp(const ListCell *a, const ListCell *b)
{
	RgBlocker  *x = lfirst(a);
	RgBlocker  *y = lfirst(b);

	return pair_cmp(x->deployment, x->version, y->deployment, y->version);
}

/*
 * Code that inserts through an automatically updatable view inserts into
 * its base table: a change of a base column that breaks inserts (NOT NULL,
 * a lost default, GENERATED ALWAYS) breaks inserts through each such view
 * over it, as the change of the view's column that shows it -- or, if the
 * view does not show it, as inserts that leave it out.  Views over views
 * are followed in turn (rg_evaluate() of the view's change).
 */
/* The view whose SELECT rule this is, or InvalidOid. */
static Oid
view_of_rule(Oid ruleid)
{
	Relation	rel = table_open(RewriteRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			result = InvalidOid;

	ScanKeyInit(&key, Anum_pg_rewrite_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ruleid));
	scan = systable_beginscan(rel, RewriteOidIndexId, true, NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)) &&
		((Form_pg_rewrite) GETSTRUCT(tup))->ev_type - '0' == CMD_SELECT)
		result = ((Form_pg_rewrite) GETSTRUCT(tup))->ev_class;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

static List *
changes_through_views(RgChange *ch)
{
	Relation	depend;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *views = NIL;
	List	   *result = NIL;
	ListCell   *lc;

	if (!OidIsValid(ch->relid) || (ch->attnum <= 0 && !ch->hidden))
		return NIL;
	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ch->relid));
	scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 2, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		Oid			viewid;

		if (dep->classid != RewriteRelationId || dep->deptype != DEPENDENCY_NORMAL)
			continue;
		viewid = view_of_rule(dep->objid);
		if (OidIsValid(viewid) && !list_member_oid(views, viewid))
			views = lappend_oid(views, viewid);
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);

	foreach(lc, views)
	{
		Oid			viewid = lfirst_oid(lc);
		Relation	view;
		Query	   *query;
		RangeTblRef *rtr;
		RgChange   *vc;
		ListCell   *tc;

		if (viewid == ch->relid || !rg_relation_is_guarded(viewid, NULL) ||
			get_rel_relkind(viewid) != RELKIND_VIEW)
			continue;
		view = relation_open(viewid, AccessShareLock);
		query = get_view_query(view);
		if (view_query_is_auto_updatable(query, false) != NULL ||
			list_length(query->jointree->fromlist) != 1 ||
			(view->trigdesc && view->trigdesc->trig_insert_instead_row))
		{
			relation_close(view, AccessShareLock);
			continue;
		}
		rtr = linitial_node(RangeTblRef, query->jointree->fromlist);
		if (rt_fetch(rtr->rtindex, query->rtable)->relid != ch->relid)
		{
			relation_close(view, AccessShareLock);
			continue;
		}

		vc = palloc(sizeof(RgChange));
		*vc = *ch;
		vc->relid = viewid;
		vc->relkind = RELKIND_VIEW;
		vc->nspname = get_namespace_name(RelationGetNamespace(view));
		vc->relname = pstrdup(RelationGetRelationName(view));
		vc->attnum = 0;
		foreach(tc, ch->hidden ? NIL : query->targetList)
		{
			TargetEntry *te = lfirst_node(TargetEntry, tc);

			if (!te->resjunk && IsA(te->expr, Var) &&
				((Var *) te->expr)->varno == rtr->rtindex &&
				((Var *) te->expr)->varattno == ch->attnum)
			{
				vc->attnum = te->resno;
				vc->attname = pstrdup(te->resname);
			}
		}
		if (vc->attnum > 0)
		{
			/* the view's own default for the column fills it in too */
			bool		view_default = TupleDescAttr(RelationGetDescr(view), vc->attnum - 1)->atthasdef;

			if (view_default && rg_change_desc(ch->kind)->rule == RG_RULE_INSERTS_WITHOUT)
				vc = NULL;
			else
				vc->has_default = ch->has_default || view_default;
		}
		else if (rg_change_desc(ch->kind)->rule == RG_RULE_WRITES_COLUMN)
			vc = NULL;			/* nothing through the view writes it */
		else if (!ch->hidden)
		{
			vc->hidden = true;
			vc->target = psprintf("%s.%s.%s", ch->nspname, ch->relname, ch->attname);
			vc->attname = "";
		}
		relation_close(view, AccessShareLock);
		if (vc != NULL)
			result = lappend(result, vc);
	}
	return result;
}

/*
 * The live versions a change breaks: a list of RgBlocker.  sessions: the
 * tagged sessions connected now (rg_live_sessions()).
 *
 * First the counters of live use: for most changes they say that nothing
 * live breaks, at the cost of two index probes.  Only otherwise are the
 * live deployments read one by one, to tell which break and why.
 */
static List *
evaluate_one(RgChange *ch, List *sessions)
{
	List	   *rows;
	List	   *blockers = NIL;
	int			n;
	int			first = 0;
	RgLiveCounts counts;
	bool		registry;
	const char *attname = NULL;
	bool		for_not_null = false;
	List	   *observed = NIL;
	List	   *observed_versions = NIL;
	ListCell   *lc;
	bool		counters;
	List	   *stale;
	RgRuleClass rule = rg_change_desc(ch->kind)->rule;

	switch (rule)
	{
		case RG_RULE_USES_COLUMN:
		case RG_RULE_WRITES_COLUMN:
			/* only the versions that use the column matter */
			attname = ch->attname;
			break;
		case RG_RULE_MAY_WRITE_NULL:
		case RG_RULE_INSERTS_WITHOUT:
			/* the column's row, and whether the version inserts at all */
			attname = ch->attname;
			for_not_null = true;
			break;
		case RG_RULE_USES_RELATION:
		case RG_RULE_INSERTS_INTO:
			break;
	}

	/*
	 * Uses tagged sessions were seen making that bear on the change: of the
	 * column for drop / rename / retype, writes for the NOT NULL rules and
	 * GENERATED ALWAYS, any for relation-level changes.
	 */
	counters = rg_counters_installed();
	foreach(lc, counters
			? rg_observed_for(ch->nspname, ch->relname, for_not_null ? NULL : attname)
			: NIL)
	{
		RgObserved *o = lfirst(lc);

		/*
		 * The NOT NULL rules ask about writes of columns, and inserts into
		 * the relation (a write of the relation itself); GENERATED ALWAYS
		 * about writes of the column.  Uses not recorded bear on all.
		 */
		if ((for_not_null || rule == RG_RULE_WRITES_COLUMN ||
			 rule == RG_RULE_INSERTS_INTO) && !o->writes)
			continue;
		if (rule == RG_RULE_WRITES_COLUMN && o->attname == NULL && !o->unrecorded)
			continue;
		observed = lappend(observed, o);
		if (!string_member(observed_versions, o->version))
			observed_versions = lappend(observed_versions, o->version);
	}

	if (counters && rg_fetch_counts(ch->nspname, ch->relname, attname, sessions,
									observed_versions, &counts))
	{
		registry = counters_may_break(ch, &counts) || counts.observed_live;
		if (!registry && !counts.other_sessions)
			return NIL;
	}
	else
		registry = true;		/* no (trusted) counters: read everything */
	rows = rg_fetch_usage(ch->nspname, ch->relname, attname, for_not_null,
						  sessions, registry);
	if (observed != NIL && registry)
		rows = add_observed_rows(rows, observed, observed_versions, sessions);

	/*
	 * Deployments the registry records but nothing has shown alive for
	 * rollguard.forget_after no longer count (unless a tagged session says
	 * otherwise: then they are not expired); those not seen for
	 * rollguard.stale_after are said to be.  Leaving one out records its
	 * expiry, if nothing did yet.
	 */
	stale = rows != NIL ? rg_fetch_stale_deployments() : NIL;
	if (stale != NIL)
	{
		List	   *kept = NIL;
		bool		left_out = false;

		foreach(lc, rows)
		{
			RgUsage    *u = lfirst(lc);
			RgLiveness *l = u->connected ? NULL : find_liveness(stale, u->deployment);

			if (l != NULL && l->expired)
				left_out = true;
			else
				kept = lappend(kept, u);
		}
		rows = kept;
		if (left_out)
			rg_note_expiries();
	}
	n = list_length(rows);

	/* rows come grouped by (deployment, version) */
	while (first < n)
	{
		RgUsage    *head = list_nth(rows, first);
		int			last = first + 1;
		bool		unknown = head->attname == NULL;
		bool		inserts_without = false;
		bool		unrecorded = false;
		char	   *reason;
		RgLiveness *liveness;

		while (last < n &&
			   strcmp(((RgUsage *) list_nth(rows, last))->deployment, head->deployment) == 0 &&
			   strcmp(((RgUsage *) list_nth(rows, last))->version, head->version) == 0)
			last++;

		reason = unknown ? judge_unknown(ch)
			: judge(ch, rows, first, last, &inserts_without, &unrecorded);
		if (reason)
		{
			RgBlocker  *b = palloc(sizeof(RgBlocker));

			b->inserts_without = inserts_without;
			b->deployment = head->deployment;
			b->version = head->version;
			b->rolling_out = head->rolling_out;
			b->reason = reason;
			b->unrecorded = unrecorded;
			b->evidence = head->connected
				? session_evidence(sessions, head->deployment, head->version, unknown)
				: NULL;
			liveness = head->connected ? NULL : find_liveness(stale, head->deployment);
			b->stale = liveness != NULL;
			b->last_deployed = liveness ? liveness->last_deployed : 0;
			b->last_connected = liveness ? liveness->last_connected : 0;
			blockers = lappend(blockers, b);
		}
		first = last;
	}
	return blockers;
}

List *
rg_evaluate(RgChange *ch, List *sessions)
{
	List	   *blockers = evaluate_one(ch, sessions);
	List	   *through_views;
	ListCell   *lc;

	switch (rg_change_desc(ch->kind)->rule)
	{
		case RG_RULE_MAY_WRITE_NULL:
		case RG_RULE_INSERTS_WITHOUT:
		case RG_RULE_WRITES_COLUMN:
			through_views = changes_through_views(ch);
			foreach(lc, through_views)
				blockers = list_concat(blockers, rg_evaluate(lfirst(lc), sessions));
			/* one order for all, as report.c counts deployments on it */
			if (through_views != NIL)
				list_sort(blockers, blocker_cmp);
			break;
		default:
			break;
	}
	return blockers;
}
