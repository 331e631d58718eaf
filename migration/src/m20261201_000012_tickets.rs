//! The support desk: tickets, the emails of their threads, and the files attached to
//! them. An email's raw bytes, its text and its attachments may hold customers'
//! passwords: they are kept encrypted (the data directory's key) and erased with the
//! credential retention after the ticket closes; the metadata stays. An email read
//! from the support mailbox keeps where it was read (folder, UIDVALIDITY, UID), unique,
//! so reading it again after a crash finds it instead of storing it twice. Ferry's own
//! emails about a ticket are outbox rows that name it, with the threading headers they
//! were sent with; a migration names the ticket it was made from.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    CreatedAt,
    UpdatedAt,
    Subject,
    Requester,
    Status,
    AssigneeId,
    AwaitingStaff,
    ClosedAt,
}

#[derive(DeriveIden)]
enum TicketMessages {
    Table,
    Id,
    TicketId,
    ReceivedAt,
    FromAddr,
    Subject,
    MessageId,
    Text,
    Raw,
    RawSize,
    RawSha256,
    SourceFolder,
    SourceUidvalidity,
    SourceUid,
    Automatic,
    Unreadable,
    PurgedAt,
}

#[derive(DeriveIden)]
enum TicketAttachments {
    Table,
    Id,
    TicketId,
    MessageId,
    FileName,
    ContentType,
    Kind,
    Items,
    Size,
    Sha256,
    Data,
    UsedAt,
    PurgedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Outbox {
    Table,
    TicketId,
    MessageId,
    InReplyTo,
    ThreadReferences,
}

#[derive(DeriveIden, Clone, Copy)]
enum Migrations {
    Table,
    TicketId,
}

fn id<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn when<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn maybe_when<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

impl Migration {
    async fn tickets(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        use Tickets as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(id(T::Id))
                    .col(when(T::CreatedAt))
                    .col(when(T::UpdatedAt))
                    .col(ColumnDef::new(T::Subject).string().not_null())
                    .col(ColumnDef::new(T::Requester).string().null())
                    .col(ColumnDef::new(T::Status).string().not_null())
                    .col(ColumnDef::new(T::AssigneeId).big_integer().null())
                    .col(ColumnDef::new(T::AwaitingStaff).boolean().not_null())
                    .col(maybe_when(T::ClosedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tickets_status")
                    .table(T::Table)
                    .col(T::Status)
                    .to_owned(),
            )
            .await
    }

    async fn messages(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        use TicketMessages as M;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(id(M::Id))
                    .col(ColumnDef::new(M::TicketId).big_integer().not_null())
                    .col(when(M::ReceivedAt))
                    .col(ColumnDef::new(M::FromAddr).string().null())
                    .col(ColumnDef::new(M::Subject).string().not_null())
                    .col(ColumnDef::new(M::MessageId).string().null())
                    // Nonce and ciphertext (XChaCha20-Poly1305); NULL once erased.
                    .col(ColumnDef::new(M::Text).binary().null())
                    .col(ColumnDef::new(M::Raw).binary().null())
                    .col(ColumnDef::new(M::RawSize).big_integer().not_null())
                    .col(ColumnDef::new(M::RawSha256).string().not_null())
                    .col(ColumnDef::new(M::SourceFolder).string().null())
                    .col(ColumnDef::new(M::SourceUidvalidity).big_integer().null())
                    .col(ColumnDef::new(M::SourceUid).big_integer().null())
                    .col(ColumnDef::new(M::Automatic).string().null())
                    .col(ColumnDef::new(M::Unreadable).string().null())
                    .col(maybe_when(M::PurgedAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ticket_messages_source",
                vec![M::SourceFolder, M::SourceUidvalidity, M::SourceUid],
            ),
            ("ticket_messages_ticket", vec![M::TicketId]),
            ("ticket_messages_message_id", vec![M::MessageId]),
        ] {
            let mut index = Index::create();
            index.name(name).table(M::Table);
            if name == "ticket_messages_source" {
                index.unique();
            }
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn attachments(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        use TicketAttachments as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(id(A::Id))
                    .col(ColumnDef::new(A::TicketId).big_integer().not_null())
                    .col(ColumnDef::new(A::MessageId).big_integer().not_null())
                    .col(ColumnDef::new(A::FileName).string().not_null())
                    .col(ColumnDef::new(A::ContentType).string().not_null())
                    .col(ColumnDef::new(A::Kind).string().not_null())
                    .col(ColumnDef::new(A::Items).big_integer().null())
                    .col(ColumnDef::new(A::Size).big_integer().not_null())
                    .col(ColumnDef::new(A::Sha256).string().not_null())
                    .col(ColumnDef::new(A::Data).binary().null())
                    .col(maybe_when(A::UsedAt))
                    .col(maybe_when(A::PurgedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ticket_attachments_ticket")
                    .table(A::Table)
                    .col(A::TicketId)
                    .to_owned(),
            )
            .await
    }

    async fn add_columns<T: IntoIden + Copy + 'static>(
        manager: &SchemaManager<'_>,
        table: T,
        columns: Vec<ColumnDef>,
    ) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        Self::tickets(manager).await?;
        Self::messages(manager).await?;
        Self::attachments(manager).await?;
        Self::add_columns(
            manager,
            Outbox::Table,
            vec![
                ColumnDef::new(Outbox::TicketId)
                    .big_integer()
                    .null()
                    .to_owned(),
                ColumnDef::new(Outbox::MessageId).string().null().to_owned(),
                ColumnDef::new(Outbox::InReplyTo).string().null().to_owned(),
                ColumnDef::new(Outbox::ThreadReferences)
                    .text()
                    .null()
                    .to_owned(),
            ],
        )
        .await?;
        Self::add_columns(
            manager,
            Migrations::Table,
            vec![
                ColumnDef::new(Migrations::TicketId)
                    .big_integer()
                    .null()
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Outbox::TicketId,
            Outbox::MessageId,
            Outbox::InReplyTo,
            Outbox::ThreadReferences,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Migrations::Table)
                    .drop_column(Migrations::TicketId)
                    .to_owned(),
            )
            .await?;
        for table in [
            TicketAttachments::Table.into_iden(),
            TicketMessages::Table.into_iden(),
            Tickets::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
