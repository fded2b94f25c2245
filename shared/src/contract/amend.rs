//! Contract: amendments (edit, delete, reactions) change their message and append the entry
//! that records it, atomically and gaplessly; heads count chat messages and keep the preview.

use super::*;
use crate::domain::{Amendment, Change, Emoji, Head, Preview};
use crate::ports::Amended;

fn amendment(c: &ConversationId, seq: Seq, by: &UserId, change: Change) -> Amendment {
    Amendment {
        conversation: c.clone(),
        seq,
        by: by.clone(),
        client_msg_id: ClientMsgId::new(format!("sys-{}", tag())).unwrap(),
        at: Utc::now(),
        expires_at: None,
        change,
    }
}

fn react(emoji: &str, remove: bool) -> Change {
    Change::React {
        emoji: Emoji::new(emoji).unwrap(),
        remove,
        max_distinct: 20,
        max_total: 500,
    }
}

async fn head(log: &dyn MessageLog, c: &ConversationId) -> Head {
    log.heads(std::slice::from_ref(c)).await.unwrap()[c].clone()
}

/// Edit, reaction and delete each append one entry referring to the message and leave the
/// message in its new state (`rev` = that entry); a request that changes nothing, a refused
/// one and one for a missing seq write nothing. Heads count chat messages only, and their
/// preview follows the latest chat message through edit and delete.
pub async fn amendments_change_the_message_and_append_an_entry(log: Arc<dyn MessageLog>) {
    let log = log.as_ref();
    let t = tag();
    let (c, alice, bob) = (conv(&t), user("alice", &t), user("bob", &t));
    let now = Utc::now();
    let first = appended(append(log, new_message(&c, &alice, "m1", now, None)).await);
    assert_eq!(first.chats, 1);
    let mut reply = new_message(&c, &bob, "m2", now, None);
    reply.reply_to = Some(1);
    assert_eq!(appended(append(log, reply).await).chats, 2);
    assert_eq!(head(log, &c).await.last.unwrap().seq, 2);

    let edit = Change::Edit {
        body: "hello, edited".into(),
        window_start: now - Duration::minutes(1),
    };
    let Amended::Applied { entry, message, .. } = log
        .amend(&amendment(&c, 1, &alice, edit.clone()))
        .await
        .unwrap()
    else {
        panic!("the edit applies")
    };
    assert_eq!(
        (entry.seq, entry.from.clone(), entry.event.clone()),
        (3, alice.clone(), Some(LogEvent::MessageEdited { seq: 1 }))
    );
    assert_eq!(
        (message.body.as_str(), message.rev),
        ("hello, edited", Some(3))
    );
    assert!(message.edited_at.is_some());
    assert!(matches!(
        log.amend(&amendment(&c, 1, &alice, edit)).await.unwrap(),
        Amended::Unchanged { .. }
    ));
    assert!(matches!(
        log.amend(&amendment(&c, 1, &bob, Change::Delete { moderator: false }))
            .await
            .unwrap(),
        Amended::Refused(crate::domain::Refusal::NotYours(1))
    ));
    assert_eq!(
        log.amend(&amendment(&c, 99, &bob, react("👍", false)))
            .await
            .unwrap(),
        Amended::Missing { head: 3 },
        "nothing was written by the refused and unchanged ones"
    );

    let Amended::Applied { message, .. } = log
        .amend(&amendment(&c, 2, &alice, react("👍", false)))
        .await
        .unwrap()
    else {
        panic!("the reaction applies")
    };
    assert_eq!(message.reactions[0].users, vec![alice.clone()]);
    assert_eq!(message.rev, Some(4));
    assert_eq!(message.reply_to, Some(1));

    let read = log.after(&c, 0, 10, Utc::now()).await.unwrap();
    assert_eq!(seqs(&read), vec![1, 2, 3, 4]);
    assert_eq!(read[0].body, "hello, edited");
    assert_eq!(read[1], message, "the log shows the current state");
    let picked = log.by_seqs(&c, &[4, 2, 99, 2], Utc::now()).await.unwrap();
    assert_eq!(seqs(&picked), vec![2, 4]);
    assert_eq!(picked[0], message);

    // The preview follows message 2 (the latest chat message) through its deletion.
    let h = head(log, &c).await;
    assert_eq!((h.last_seq, h.chats), (4, 2));
    assert_eq!(h.last.unwrap().text.as_deref(), Some("body of m2"));
    let Amended::Applied { entry, message, .. } = log
        .amend(&amendment(&c, 2, &bob, Change::Delete { moderator: false }))
        .await
        .unwrap()
    else {
        panic!("the delete applies")
    };
    assert_eq!(entry.event, Some(LogEvent::MessageDeleted { seq: 2 }));
    assert!(message.deleted && message.body.is_empty() && message.reactions.is_empty());
    let stored = &log.by_seqs(&c, &[2], Utc::now()).await.unwrap()[0];
    assert_eq!(stored, &message);
    let h = head(log, &c).await;
    assert_eq!((h.last_seq, h.chats), (5, 2));
    assert_eq!(h.last.clone(), Some(Preview::of(&message)));
    assert!(h.last.unwrap().text.is_none());
    assert!(matches!(
        log.amend(&amendment(&c, 2, &bob, react("👍", false)))
            .await
            .unwrap(),
        Amended::Refused(crate::domain::Refusal::Deleted(2))
    ));

    assert_gapless(log, &c).await;
}

/// A membership change becomes the preview (flagged by its type, no text); an amendment of an
/// expired message finds nothing.
pub async fn heads_preview_membership_changes(log: Arc<dyn MessageLog>) {
    let log = log.as_ref();
    let t = tag();
    let (c, alice, bob) = (conv(&t), user("alice", &t), user("bob", &t));
    let past = Utc::now() - Duration::seconds(1);
    append(log, new_message(&c, &alice, "m1", Utc::now(), Some(past))).await;
    let mut added = new_message(&c, &alice, "sys", Utc::now(), None);
    added.body = String::new();
    added.event = Some(LogEvent::MembersAdded {
        users: vec![bob.clone()],
    });
    let appended = appended(append(log, added).await);
    assert_eq!(appended.chats, 1, "the event is not a chat message");
    let h = head(log, &c).await;
    let last = h.last.unwrap();
    assert_eq!((h.chats, last.seq, last.from), (1, 2, alice.clone()));
    assert_eq!(
        (last.event.as_deref(), last.text),
        (Some("members_added"), None)
    );
    assert_eq!(
        log.amend(&amendment(&c, 1, &alice, react("👍", false)))
            .await
            .unwrap(),
        Amended::Missing { head: 2 },
        "message 1 has expired"
    );
    assert_eq!(head(log, &conv(&tag())).await, Head::default());
}

/// Reactions of 6 users racing 2 appenders on one message: every reaction lands, the log stays
/// gapless, and the message's `rev` is the last reaction entry.
pub async fn concurrent_amendments_stay_gapless(log: Arc<dyn MessageLog>) {
    let t = tag();
    let c = conv(&t);
    let author = user("author", &t);
    append(
        log.as_ref(),
        new_message(&c, &author, "m0", Utc::now(), None),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (log, c, by) = (log.clone(), c.clone(), user(&format!("r{i}"), &t));
        tasks.push(tokio::spawn(async move {
            let a = amendment(&c, 1, &by, react("🎉", false));
            match log.amend(&a).await.unwrap() {
                Amended::Applied { entry, .. } => entry.seq,
                other => panic!("{other:?}"),
            }
        }));
    }
    for k in 0..2 {
        let (log, c, from) = (log.clone(), c.clone(), user(&format!("w{k}"), &t));
        tasks.push(tokio::spawn(async move {
            let m = new_message(&c, &from, &format!("w{k}"), Utc::now(), None);
            stored(append(log.as_ref(), m).await).seq
        }));
    }
    let mut reaction_entries = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let seq = task.await.unwrap();
        if i < 6 {
            reaction_entries.push(seq);
        }
    }
    let all = assert_gapless(log.as_ref(), &c).await;
    assert_eq!(all.len(), 9);
    let m = &all[0];
    assert_eq!(m.reactions.len(), 1);
    assert_eq!(m.reactions[0].users.len(), 6, "no reaction lost");
    assert_eq!(m.rev, reaction_entries.iter().max().copied());
    assert_eq!(head(log.as_ref(), &c).await.chats, 3);
}
