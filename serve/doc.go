// Package serve is mailrun serve: a live preview of a campaign for its
// author. It serves the gallery's pages (package gallery, the same
// templates preview writes), rendered on request from the current files,
// and makes every open page reload itself when a campaign file changes. It
// sends nothing and cannot: it reaches the campaign only through mailing's
// RenderOne and Index, and does not import the wire (package sender).
//
// The flow, one function per step:
//
//  1. Listen opens the address, 127.0.0.1 unless the caller names another
//     host, and says whether others can reach it (mailing.IsLoopback).
//  2. New checks the campaign's folder; Server.Run watches it, loads the
//     campaign (Server.load: campaign.Load; a campaign with problems is
//     served, its problems shown in the pages), starts the HTTP server,
//     and shuts it and the watcher down when ctx ends.
//  3. Server.ServeHTTP answers: the index (mailing.Index into a
//     gallery.Collect, once per version of the files, then
//     gallery.WriteIndex), a row's page (mailing.RenderOne, gallery.Parse,
//     gallery.WritePage; the row's problems with their file:line stand
//     where the message would be), its inline parts and its .eml. Every
//     URL names a row by its number, never a path, so no request reaches a
//     file by itself.
//  4. watch follows the campaign folder and its subfolders with fsnotify
//     (folders, not files, so an editor that saves by renaming a new file
//     over the old one is seen), waits for the events to settle (settle),
//     reloads the campaign and bumps the version.
//  5. events streams server-sent events: each page's script (liveJS)
//     connects with the version it shows and gets "reload" as soon as the
//     files are newer.
//
// Pages are written by html/template only. The message's HTML stays in the
// gallery's sandboxed frame (no scripts; its own origin only for its images); the page's own
// script comes from the server (script-src 'self') and only reloads.
// Requests whose Host is not the server's are refused, so a web page
// cannot reach a loopback server through DNS rebinding.
package serve
