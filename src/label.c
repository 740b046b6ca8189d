/*-------------------------------------------------------------------------
 * label.c
 *		What a deployment name or version label may be: the one rule, used
 *		by the settings' check hooks (sessions.c) and by the SQL API
 *		(rollguard._check_label(), called by every deploy-script function),
 *		and what counts as white space (also for override()'s reason).
 *
 * A label is not empty, at most RG_LABEL_MAX bytes, valid in the database
 * encoding, free of C0 and C1 controls and of the bidirectional formatting
 * characters (which make a name display reversed in messages), and neither
 * begins nor ends with white space.  Characters are judged by Unicode code
 * point, whatever the database encoding and collation, so that a label is
 * judged the same in every database (SQL_ASCII has no code points: its
 * bytes are taken as UTF-8 where they are, else one by one).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "rollguard.h"

PG_FUNCTION_INFO_V1(rollguard_check_label);

/* Unicode White_Space, and the zero-width space and the BOM. */
bool
rg_is_white_space(unsigned int c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 ||
		c == 0x1680 || (c >= 0x2000 && c <= 0x200b) || c == 0x2028 ||
		c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000 || c == 0xfeff;
}

/* C0 and C1 controls, and the bidirectional formatting characters. */
static bool
is_control(pg_wchar c)
{
	return (c >= 0x01 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) ||
		c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
		(c >= 0x2066 && c <= 0x2069);
}

/*
 * Calls fn on every character of s (in the database encoding) as a Unicode
 * code point, with its position (from 1), until fn returns true; returns
 * the position where it did, or 0.
 */
static int
find_code_point(const char *s, bool (*fn) (pg_wchar c, int pos, void *arg), void *arg)
{
	const char *utf8;
	int			utf8len;
	int			pos = 0;

	if (GetDatabaseEncoding() == PG_SQL_ASCII)
		utf8 = s;
	else
		utf8 = pg_server_to_any(s, strlen(s), PG_UTF8);
	utf8len = strlen(utf8);
	for (int i = 0; i < utf8len;)
	{
		const unsigned char *p = (const unsigned char *) utf8 + i;
		int			clen = pg_utf_mblen(p);
		pg_wchar	c;

		if (i + clen > utf8len || !pg_utf8_islegal(p, clen))
		{
			c = *p;
			clen = 1;
		}
		else
			c = utf8_to_unicode(p);
		if (fn(c, ++pos, arg))
			return pos;
		i += clen;
	}
	return 0;
}

typedef struct LabelScan
{
	RgLabelCheck *check;
	pg_wchar	last;
} LabelScan;

static bool
scan_label_char(pg_wchar c, int pos, void *arg)
{
	LabelScan  *scan = arg;

	if (is_control(c))
	{
		scan->check->problem = RG_LABEL_CONTROL;
		scan->check->character = c;
		scan->check->position = pos;
		return true;
	}
	if (pos == 1 && rg_is_white_space(c))
		scan->check->problem = RG_LABEL_BLANK_END;
	scan->last = c;
	return false;
}

/* What, if anything, is wrong with a deployment name or version label. */
RgLabelCheck
rg_label_check(const char *label)
{
	RgLabelCheck check = {0};
	LabelScan	scan = {&check, 0};
	int			len = strlen(label);

	check.length = len;
	if (len == 0)
		check.problem = RG_LABEL_EMPTY;
	else if (len > RG_LABEL_MAX)
		check.problem = RG_LABEL_TOO_LONG;
	else if (!pg_verifymbstr(label, len, true))
		check.problem = RG_LABEL_BAD_ENCODING;
	else if (find_code_point(label, scan_label_char, &scan) == 0 &&
			 rg_is_white_space(scan.last))
		check.problem = RG_LABEL_BLANK_END;
	return check;
}

static bool
not_white_space(pg_wchar c, int pos, void *arg)
{
	return !rg_is_white_space(c);
}

/* Is the text nothing but white space? */
bool
rg_is_blank(const char *s)
{
	return find_code_point(s, not_white_space, NULL) == 0;
}

/*
 * rollguard._check_label(what text, label text) RETURNS text: the label,
 * or an error that says what is wrong with it.
 */
Datum
rollguard_check_label(PG_FUNCTION_ARGS)
{
	char	   *what = PG_ARGISNULL(0) ? "label" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *label;
	RgLabelCheck check;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	label = text_to_cstring(PG_GETARG_TEXT_PP(1));
	check = rg_label_check(label);
	switch (check.problem)
	{
		case RG_LABEL_OK:
			break;
		case RG_LABEL_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not be empty", what)));
			break;
		case RG_LABEL_TOO_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("%s is too long", what),
					 errdetail("It is %d bytes long; the limit is %d bytes.",
							   check.length, RG_LABEL_MAX)));
			break;
		case RG_LABEL_BAD_ENCODING:
			/* text is valid in the database encoding: cannot happen here */
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("%s is not valid in encoding \"%s\"", what,
							GetDatabaseEncodingName())));
			break;
		case RG_LABEL_CONTROL:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s contains a control character", what),
					 errdetail("Character U+%04X at position %d.",
							   (unsigned int) check.character, check.position)));
			break;
		case RG_LABEL_BLANK_END:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s \"%s\" has leading or trailing white space", what, label)));
			break;
	}
	PG_RETURN_TEXT_P(PG_GETARG_TEXT_PP(1));
}
