// Package gallery makes a preview's pages: index.html with one line per
// message (or per row that has only problems) and one page per message.
// Preview writes them beside the .eml files; mailrun serve renders the same
// pages on request. It imports nothing of mailrun: it takes the bytes of
// each message and a little metadata, so that any producer of .eml files
// can have a gallery.
//
// The flow, one function per step:
//
//  1. New opens a gallery in a folder; the index's rows stream to a
//     temporary file there, so memory does not grow with the rows.
//     Collect opens one without a folder, which keeps its index in memory
//     for a server.
//  2. Page (safe for concurrent use, called as each message is written)
//     parses the message once (Parse: net/mail, then the MIME tree with
//     mime/multipart and the transfer decodings), writes its inline parts
//     once per content under PartsDir (writePart), writes the page
//     (WritePage, with Links mapping each inline part to its file) and
//     returns the message's Entry.
//  3. Add appends an Entry to the index in row order; Note adds a problem
//     that belongs to no row.
//  4. Close writes index.html (indexHead, the rows, indexFoot); Abort
//     drops the temporary file instead. A server writes Index with
//     WriteIndex instead.
//
// WritePage and WriteIndex are the one template of each page: the files
// and the served pages differ only in their Links (and Live, the served
// page's picker form and reload script).
//
// Every file is written to a temporary name and renamed (writeWith), so a
// crash leaves no half page. Everything goes through html/template: a
// hostile subject, name or file name is text. The message's HTML is shown
// as sent in an <iframe sandbox="allow-same-origin"> through srcdoc,
// without allow-scripts, so its scripts do not run and its CSS stays
// inside; the origin lets its images load from file://.
// The files have no script of their own and load nothing from elsewhere:
// they work from file:// and from any static server, offline.
package gallery
