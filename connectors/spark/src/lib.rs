//! Direct-mode stream consumer.
