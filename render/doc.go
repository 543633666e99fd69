// Package render turns a campaign's templates and one recipient into the
// complete bytes of one MIME message. It is the only place message bytes
// are made: preview writes them to .eml files and send transmits exactly
// them. It imports neither campaign nor sender.
//
// New prepares a Renderer once per run, in Renderer.init's steps:
//
//  1. Open the campaign folder as an os.Root, so every file read later
//     stays inside it (no "..", no absolute paths, no symlinks out).
//  2. Parse From, Sender, Reply-To and the group To (Renderer.parseAddresses);
//     several From authors require a Sender (RFC 5322 3.6.2).
//  3. Parse every template with missingkey=error, named after its file
//     ("body.md") or its role ("subject", "name", "header X-Foo"), so errors
//     read "template: body.md:3:12: ...", and a template file that is not
//     UTF-8 is refused with the line of its first bad byte (checkUTF8,
//     "body.md:3: invalid UTF-8 ..."): text/template for subject, name,
//     headers, text, Markdown, attachment paths and unsubscribe URLs;
//     html/template for the HTML body and the layout (parseText,
//     parseHTML), each with sprig's hermetic functions (default, upper,
//     join, ...) minus what reads the clock, randomness, the environment
//     or the machine (templateFuncs, funcs.go; a template naming one is
//     refused with the reason, excludedHint); the Markdown template gets
//     them adapted to its markers (markdownFunc). A column name the
//     parser cannot read, {{.First Name}}
//     ('function "Name" not defined') or {{.e-mail}}, gets the way to
//     write it, {{index . "First Name"}} (columnHint). Renderer.parseTemplates
//     does subject, name, body (Renderer.parseBody), text and layout; a
//     layout that reads only .Body and .Vars is run once here
//     (Renderer.splitLayout). The body's and layout's sources are read
//     for what mail clients drop or cannot resolve (<script>, <form>,
//     <link rel=stylesheet>, relative links and images that are not
//     embedded), once per template: Renderer.Warnings (lint.go).
//  4. Check extra header names with CheckHeaderName (RFC 5322 section 2.2;
//     no overriding of the fields render writes) and parse their values
//     (Renderer.parseHeaders).
//  5. Read and encode static attachments once, each as its whole MIME
//     part (Renderer.attachment, encodePart in parts.go), and parse the
//     path templates of the others (Renderer.prepareAttachments). Inline
//     images are read and encoded on first use and cached for the
//     Renderer's life (Renderer.image). Renderer.StaticSize tells what the
//     parts every message carries weigh, for a caller sizing its memory.
//  6. Parse the List-Unsubscribe templates (Renderer.parseUnsubscribe).
//  7. Check the DKIM configuration (checkDKIM): the key (RSA of at least
//     1024 bits or Ed25519, the rule ParseDKIMKey applies too) and the h=
//     list (CheckDKIMHeaders).
//
// The rules of steps 4 and 7 are exported so that a caller validating its
// own configuration applies the same ones: CheckHeaderName,
// CheckDKIMHeaders, ParseDKIMKey (a PEM file to a signer) and WeakDKIMKey
// (under RecommendedDKIMBits deserves a warning).
//
// Renderer.Render (individual) and Renderer.RenderGroup (one message for
// everybody, data = .Vars only) then, per message, in Renderer.content and
// Renderer.compose (steps 2 to 6 each render their part whether or not
// another failed, and collect the failures in a fieldErrors; a message is
// composed only when there is none):
//
//  1. Build the data: every CSV column by header, plus .Vars.
//  2. Render name (Renderer.displayName), the List-Unsubscribe URIs
//     (Renderer.unsubscribe; RFC 2369, RFC 8058; individual messages
//     only), subject and extra headers (Renderer.headerValues); refuse CR,
//     LF, NUL and other control characters (checkHeaderValue) so a value
//     can never start a header.
//  3. Body: the Markdown template runs on values that print as markers;
//     the markers become numbered placeholders (the skeleton, skeleton.go),
//     goldmark (GFM, raw HTML allowed for the author) renders each distinct
//     skeleton once into HTML and textWriter the plain text from the same
//     AST, and the recipient's values are put in with the escaping of each
//     place (a template whose printf cut a marker falls back to values
//     escaped by mdEscape, then goldmark); or html/template renders the
//     HTML body, and htmlToText derives the plain text (Renderer.body).
//  4. Embed local <img src> of body and layout (embedImages): each becomes
//     cid:, the image a multipart/related part.
//  5. Wrap the body in the layout ({{.Body}}; Renderer.wrapBody), with an
//     empty body when the body failed; render the text template if there
//     is one. Unless Config.InlineCSS is false, when the layout or body
//     holds a <style>, copy its rules into style attributes (go-premailer;
//     @media stays in the head; inline.go): for a Markdown skeleton in a
//     layout run once, the whole page once per skeleton, before the
//     values go in (Renderer.wholePage, step 3); any other page per
//     message (Renderer.inlineMessage), its values escaped already.
//  6. Render, read and encode per-recipient attachment paths
//     (Renderer.files, Renderer.attachment).
//  7. Compose with go-mail: headers (all through SetGenHeader, so their
//     order is deterministic), each value encoded by render first so that
//     decoding gives back exactly the data (RFC 2047 section 5): printable
//     ASCII without an encoded-word look-alike as it is, anything else as
//     encoded-words (encodeText for Subject and extra headers,
//     formatAddress and encodePhrase for display names; the class of
//     CVE-2024-6923), the first encoded-word sized to what the field name
//     leaves of a 78-octet line (firstRoom), text/plain + text/html
//     alternatives (Renderer.setHeaders); for each image and attachment a
//     small slot (Renderer.setFiles); CRLF line endings. A field go-mail
//     folded right after its colon is folded again with its value
//     starting on the first line (refoldHeaders; RFC 5322 section
//     2.2.3), which Python's email would otherwise read with a leading
//     blank.
//  8. Put the encoded parts, with RFC 2231 file names, in the slots
//     (Renderer.write: findSlots, splice), so a file the same for every
//     row is copied into each message rather than encoded again; the bytes
//     are those go-mail would have written.
//  9. Sign with DKIM (Renderer.sign, go-msgauth, relaxed/relaxed) over the
//     spliced bytes and put the DKIM-Signature first.
//
// An error from Render or RenderGroup is errors.Join of one *FieldError
// per part that failed, in the order of the steps: errors.As finds the
// first, a caller walking Unwrap() []error sees each; the caller adds the
// CSV file, row and address. A template that reads a column the row lacks
// fails with a *MissingKeyError cause (missingColumn): the key, the row's
// columns and the closest of them; once per missing column, as execText
// runs the template again with each one empty. text/template says so
// only in its error's text, read by missingKey alone. A Renderer is safe
// for concurrent use.
package render
