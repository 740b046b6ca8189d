/*-------------------------------------------------------------------------
 * rules.c
 *		The rules: which live versions a change breaks, and the refusal.
 *
 * Each live (deployment, version) is judged on its effective contract for
 * the changed relation:
 *
 *	drop / rename / retype a column		it uses the column
 *	drop / rename / move a relation		it uses any column of it
 *	SET NOT NULL, CHECK (c IS NOT NULL)	it may write NULL to the column, or
 *										it inserts without writing it and
 *										the column has no default
 *	DROP DEFAULT of a NOT NULL column,	it inserts into the relation without
 *	ADD COLUMN NOT NULL without default	writing the column
 *
 * ("inserts into t" = its contract lists a column of t that it writes.)
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "lib/stringinfo.h"
#include "utils/elog.h"

#include "rollguard.h"

typedef struct ChangeText
{
	const char *label;			/* the "change" column of rollguard.check() */
	const char *hint;
} ChangeText;

static const ChangeText change_text[] = {
	[RG_DROP_COLUMN] = {"drop column",
	"Roll out a version that no longer uses this column to every deployment, then run the migration again."},
	[RG_RENAME_COLUMN] = {"rename column",
	"Code finds columns by name: add the new column beside the old one, roll out code that uses only the new one to every deployment, then drop the old one."},
	[RG_ALTER_TYPE] = {"alter column type",
	"Only widening changes (varchar(n) to a larger n or to text, smallint to integer to bigint, numeric to a wider precision) are allowed while code uses the column: add a column of the new type instead, or first roll out code that no longer uses this one."},
	[RG_SET_NOT_NULL] = {"set not null",
	"First roll out a version that always writes a non-NULL value to this column to every deployment (for an inferred contract, declare it with rollguard.never_null()), or give the column a database default."},
	[RG_CHECK_NOT_NULL] = {"add check not null",
	"First roll out a version that always writes a non-NULL value to this column to every deployment (for an inferred contract, declare it with rollguard.never_null()), or give the column a database default."},
	[RG_DROP_DEFAULT] = {"drop default",
	"Keep the database default (in Django 5, db_default) until every deployment runs a version that writes this column, then drop it in a later migration."},
	[RG_ADD_NOT_NULL_COLUMN] = {"add not null column",
	"Add the column with a database default (in Django 5, db_default) or as nullable, and keep it so until every deployment runs a version that writes it."},
	[RG_DROP_RELATION] = {"drop relation",
	"Roll out a version that no longer uses this relation to every deployment, then run the migration again."},
	[RG_RENAME_RELATION] = {"rename relation",
	"Code finds relations by name: keep the old name (for example, as a view on the renamed table) until every deployment runs code that uses the new one."},
	[RG_MOVE_RELATION] = {"set schema",
	"Code finds relations by name: keep the old name (for example, as a view on the moved table) until every deployment runs code that uses the new one."},
	[RG_RENAME_SCHEMA] = {"rename schema",
	"Code finds relations by schema and name: keep the old schema until every deployment runs code that uses the new one."},
	[RG_CASCADE_DROP_COLUMN] = {"drop column (cascade)",
	"Roll out a version that no longer uses this column to every deployment, or drop the dependent objects without CASCADE so that the column stays."},
	[RG_CASCADE_DROP_RELATION] = {"drop relation (cascade)",
	"Roll out a version that no longer uses this relation to every deployment, or drop the dependent objects without CASCADE so that the relation stays."},
};

const char *
rg_change_label(RgChangeKind kind)
{
	return change_text[kind].label;
}

static const char *
relkind_word(char relkind)
{
	switch (relkind)
	{
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		default:
			return "table";
	}
}

/*
 * Judge one live (deployment, version) on its rows for the relation
 * (rows[first .. last-1]).  Returns the reason it breaks, or NULL.
 */
static char *
judge(RgChange *ch, List *rows, int first, int last)
{
	RgUsage    *col = NULL;
	bool		inserts = false;
	StringInfoData buf;
	const char *qualified = psprintf("%s.%s", ch->nspname, ch->relname);

	for (int i = first; i < last; i++)
	{
		RgUsage    *u = list_nth(rows, i);

		if (u->writes)
			inserts = true;
		if (ch->attname && strcmp(u->attname, ch->attname) == 0)
			col = u;
	}

	switch (ch->kind)
	{
		case RG_DROP_COLUMN:
		case RG_RENAME_COLUMN:
		case RG_ALTER_TYPE:
		case RG_CASCADE_DROP_COLUMN:
			if (col)
				return psprintf("uses %s.%s", qualified, ch->attname);
			return NULL;

		case RG_DROP_RELATION:
		case RG_RENAME_RELATION:
		case RG_MOVE_RELATION:
		case RG_RENAME_SCHEMA:
		case RG_CASCADE_DROP_RELATION:
			initStringInfo(&buf);
			appendStringInfo(&buf, "uses %s (", qualified);
			for (int i = first; i < last && i < first + 5; i++)
				appendStringInfo(&buf, "%s%s", i > first ? ", " : "",
								 ((RgUsage *) list_nth(rows, i))->attname);
			if (last - first > 5)
				appendStringInfo(&buf, " and %d more", last - first - 5);
			appendStringInfoChar(&buf, ')');
			return buf.data;

		case RG_SET_NOT_NULL:
		case RG_CHECK_NOT_NULL:
			if (col && col->nullable)
				return psprintf("may write NULL to %s.%s", qualified, ch->attname);
			if (inserts && !(col && col->writes) && !ch->has_default)
				return psprintf("inserts into %s without writing %s, which has no default",
								qualified, ch->attname);
			return NULL;

		case RG_DROP_DEFAULT:
		case RG_ADD_NOT_NULL_COLUMN:
			if (inserts && !(col && col->writes))
				return psprintf("inserts into %s without writing %s", qualified, ch->attname);
			return NULL;
	}
	return NULL;
}

/* The live versions a change breaks: a list of RgBlocker. */
List *
rg_evaluate(RgChange *ch)
{
	List	   *rows = rg_fetch_usage(ch->nspname, ch->relname);
	List	   *blockers = NIL;
	int			n = list_length(rows);
	int			first = 0;

	/* rows come grouped by (deployment, version) */
	while (first < n)
	{
		RgUsage    *head = list_nth(rows, first);
		int			last = first + 1;
		char	   *reason;

		while (last < n &&
			   strcmp(((RgUsage *) list_nth(rows, last))->deployment, head->deployment) == 0 &&
			   strcmp(((RgUsage *) list_nth(rows, last))->version, head->version) == 0)
			last++;

		reason = judge(ch, rows, first, last);
		if (reason)
		{
			RgBlocker  *b = palloc(sizeof(RgBlocker));

			b->deployment = head->deployment;
			b->version = head->version;
			b->rolling_out = head->rolling_out;
			b->reason = reason;
			blockers = lappend(blockers, b);
		}
		first = last;
	}
	return blockers;
}

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

/* Emits the refusal (ERROR) or the warning for one blocked change. */
static void
report(int elevel, RgChange *ch, List *blockers, int more_changes)
{
	int			n = count_deployments(blockers);
	const char *kind = relkind_word(ch->relkind);
	char	   *rel = psprintf("%s.%s", ch->nspname, ch->relname);
	char	   *msg;
	StringInfoData detail;
	ListCell   *lc;

	switch (ch->kind)
	{
		case RG_DROP_COLUMN:
		case RG_CASCADE_DROP_COLUMN:
			msg = psprintf("cannot drop column \"%s\" of %s \"%s\"", ch->attname, kind, rel);
			break;
		case RG_RENAME_COLUMN:
			msg = psprintf("cannot rename column \"%s\" of %s \"%s\"", ch->attname, kind, rel);
			break;
		case RG_ALTER_TYPE:
			msg = psprintf("cannot change the type of column \"%s\" of %s \"%s\"", ch->attname, kind, rel);
			break;
		case RG_SET_NOT_NULL:
			msg = psprintf("cannot make column \"%s\" of %s \"%s\" NOT NULL", ch->attname, kind, rel);
			break;
		case RG_CHECK_NOT_NULL:
			msg = psprintf("cannot add a CHECK (%s IS NOT NULL) constraint to %s \"%s\"", ch->attname, kind, rel);
			break;
		case RG_DROP_DEFAULT:
			msg = psprintf("cannot drop the %s of NOT NULL column \"%s\" of %s \"%s\"",
						   ch->target ? ch->target : "default", ch->attname, kind, rel);
			break;
		case RG_ADD_NOT_NULL_COLUMN:
			msg = psprintf("cannot add NOT NULL column \"%s\" without a default to %s \"%s\"",
						   ch->attname, kind, rel);
			break;
		case RG_DROP_RELATION:
		case RG_CASCADE_DROP_RELATION:
			msg = psprintf("cannot drop %s \"%s\"", kind, rel);
			break;
		case RG_RENAME_RELATION:
			msg = psprintf("cannot rename %s \"%s\"", kind, rel);
			break;
		case RG_MOVE_RELATION:
			msg = psprintf("cannot move %s \"%s\" to schema \"%s\"", kind, rel, ch->target);
			break;
		case RG_RENAME_SCHEMA:
			msg = psprintf("cannot rename schema \"%s\", which holds %s \"%s\"", ch->nspname, kind, rel);
			break;
		default:
			elog(ERROR, "rollguard: unexpected change kind %d", (int) ch->kind);
	}

	initStringInfo(&detail);
	if (ch->kind == RG_CASCADE_DROP_COLUMN || ch->kind == RG_CASCADE_DROP_RELATION)
		appendStringInfoString(&detail, "The statement drops it as a dependent object (CASCADE).\n");
	foreach(lc, blockers)
	{
		RgBlocker  *b = lfirst(lc);

		appendStringInfo(&detail, "%sDeployment \"%s\" %s version \"%s\", which %s.",
						 foreach_current_index(lc) > 0 ? "\n" : "",
						 b->deployment, b->rolling_out ? "is rolling out" : "runs",
						 b->version, b->reason);
	}
	if (more_changes > 0)
		appendStringInfo(&detail, "\nThe statement makes %d more breaking %s; rollguard.check() lists %s.",
						 more_changes, more_changes == 1 ? "change" : "changes",
						 more_changes == 1 ? "it" : "them");

	switch (ch->kind)
	{
		case RG_SET_NOT_NULL:
		case RG_CHECK_NOT_NULL:
			ereport(elevel,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg_plural("%s: %d deployment may still write NULL to it",
								   "%s: %d deployments may still write NULL to it",
								   n, msg, n),
					 errdetail_internal("%s", detail.data),
					 errhint("%s", change_text[ch->kind].hint)));
			break;
		case RG_DROP_DEFAULT:
		case RG_ADD_NOT_NULL_COLUMN:
			ereport(elevel,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg_plural("%s: %d deployment still inserts rows without it",
								   "%s: %d deployments still insert rows without it",
								   n, msg, n),
					 errdetail_internal("%s", detail.data),
					 errhint("%s", change_text[ch->kind].hint)));
			break;
		default:
			ereport(elevel,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg_plural("%s: %d deployment still uses it",
								   "%s: %d deployments still use it",
								   n, msg, n),
					 errdetail_internal("%s", detail.data),
					 errhint("%s", change_text[ch->kind].hint)));
			break;
	}
}

/*
 * Evaluates every change of a statement and acts on rollguard.enforce: "on"
 * refuses the first breaking change (naming all its blockers, and counting
 * the others), "warn" reports each one.
 */
void
rg_enforce_changes(List *changes)
{
	List	   *blocked = NIL;
	List	   *blockers_of = NIL;
	ListCell   *lc;
	ListCell   *bc;

	if (rg_enforce == RG_ENFORCE_OFF || changes == NIL)
		return;

	rg_lock_registry();
	foreach(lc, changes)
	{
		RgChange   *ch = lfirst(lc);
		List	   *blockers = rg_evaluate(ch);

		if (blockers != NIL)
		{
			blocked = lappend(blocked, ch);
			blockers_of = lappend(blockers_of, blockers);
		}
	}
	if (blocked == NIL)
		return;

	if (rg_enforce == RG_ENFORCE_ON)
		report(ERROR, linitial(blocked), linitial(blockers_of), list_length(blocked) - 1);

	forboth(lc, blocked, bc, blockers_of)
		report(WARNING, lfirst(lc), lfirst(bc), 0);
}
